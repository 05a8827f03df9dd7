#include "pg/pg_migrations.h"

#include "fmt/format.h"

namespace sluice {
namespace {

// pg_advisory_xact_lock key that serializes `sluice migrate` runs: "sluice" in ASCII.
constexpr const char* kMigrationLockKey = "126896915734117";

constexpr const char* kBootstrapSql = R"sql(
CREATE SCHEMA IF NOT EXISTS sluice;
CREATE TABLE IF NOT EXISTS sluice.schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
)sql";

StatusOr<int> MaxAppliedVersion(PgConnection& conn) {
  SLUICE_ASSIGN_OR_RETURN(
      PgResult result,
      conn.Execute("SELECT coalesce(max(version), 0)::int4 FROM sluice.schema_migrations",
                   PgParams(), PgFormat::kBinary));
  return result.BinaryInt32(0, 0);
}

StatusOr<MigrationResult> MigrateLocked(PgConnection& conn, int target) {
  SLUICE_RETURN_IF_ERROR(
      conn.Execute(fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLockKey)).status());
  SLUICE_RETURN_IF_ERROR(conn.ExecuteScript(kBootstrapSql));
  MigrationResult out;
  SLUICE_ASSIGN_OR_RETURN(out.from_version, MaxAppliedVersion(conn));
  out.to_version = out.from_version;
  if (out.from_version > RequiredSchemaVersion()) {
    return FailedPrecondition(fmt::format(
        "database schema is at version {}, newer than this sluice knows ({}): upgrade sluice",
        out.from_version, RequiredSchemaVersion()));
  }
  for (const Migration& m : Migrations()) {
    if (m.version <= out.from_version || m.version > target) continue;
    Status applied = conn.ExecuteScript(m.sql);
    if (!applied.ok()) {
      return applied.WithContext(fmt::format("migration {} ({})", m.version, m.name));
    }
    SLUICE_RETURN_IF_ERROR(
        conn.Execute("INSERT INTO sluice.schema_migrations (version, name) VALUES ($1, $2)",
                     PgParams().Int32(m.version).Text(m.name))
            .status());
    out.to_version = m.version;
  }
  return out;
}

}  // namespace

int RequiredSchemaVersion() { return Migrations().back().version; }

StatusOr<MigrationResult> Migrate(PgConnection& conn, int target_version) {
  int target = target_version == 0 ? RequiredSchemaVersion() : target_version;
  if (target < 0 || target > RequiredSchemaVersion()) {
    return InvalidArgument(fmt::format("no schema version {}: this sluice knows 1 to {}",
                                       target_version, RequiredSchemaVersion()));
  }
  // DDL is transactional in PostgreSQL: a failed migration leaves no trace.
  SLUICE_RETURN_IF_ERROR(conn.ExecuteScript("BEGIN"));
  StatusOr<MigrationResult> result = MigrateLocked(conn, target);
  if (!result.ok()) {
    if (!conn.broken()) conn.ExecuteScript("ROLLBACK").ok();
    return result.status();
  }
  SLUICE_RETURN_IF_ERROR(conn.ExecuteScript("COMMIT"));
  return result;
}

StatusOr<int> SchemaVersion(PgConnection& conn) {
  SLUICE_ASSIGN_OR_RETURN(
      PgResult exists, conn.Execute("SELECT to_regclass('sluice.schema_migrations') IS NOT NULL"));
  if (exists.Raw(0, 0) != "t") return 0;
  return MaxAppliedVersion(conn);
}

Status CheckSchema(PgConnection& conn) {
  SLUICE_ASSIGN_OR_RETURN(int version, SchemaVersion(conn));
  int required = RequiredSchemaVersion();
  if (version < required) {
    return FailedPrecondition(
        fmt::format("database schema is at version {}, this sluice needs {}: run `sluice migrate`",
                    version, required));
  }
  if (version > required) {
    return FailedPrecondition(fmt::format(
        "database schema is at version {}, newer than this sluice knows ({}): upgrade sluice",
        version, required));
  }
  return Status::Ok();
}

}  // namespace sluice
