// The database schema sluice keeps in the `sluice` schema, versioned in
// sluice.schema_migrations. Migrations live in src/pg/migrations/NNN_name.sql and are compiled
// in; `sluice migrate` applies them, and every server and worker calls CheckSchema at start.
// Thread-safety: free functions; each uses only the connection it is given.
#pragma once

#include <span>

#include "common/status.h"
#include "pg/pg_connection.h"

namespace sluice {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Every migration this build knows, in increasing version order (generated at build time).
std::span<const Migration> Migrations();
// The schema version this build needs: the last migration's.
int RequiredSchemaVersion();

struct MigrationResult {
  int from_version = 0;
  int to_version = 0;
};

// Brings the schema to `target_version` (0: the latest) in one transaction, holding an advisory
// lock so that processes migrating at once apply each migration exactly once. Idempotent.
// FailedPrecondition when the database is already newer than this build.
StatusOr<MigrationResult> Migrate(PgConnection& conn, int target_version = 0);

// The applied version; 0 for a database that was never migrated.
StatusOr<int> SchemaVersion(PgConnection& conn);

// Ok when the database is at RequiredSchemaVersion(); otherwise FailedPrecondition saying what
// to do ("database schema is at version 1, this sluice needs 2: run `sluice migrate`").
Status CheckSchema(PgConnection& conn);

}  // namespace sluice
