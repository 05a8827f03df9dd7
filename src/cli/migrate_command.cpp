// `sluice migrate`: creates or upgrades sluice's tables in PostgreSQL (or checks them).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "pg/pg_migrations.h"

namespace sluice::cli {
namespace {

struct MigrateArgs {
  std::string database_url;
  bool check = false;
  int to_version = 0;
};

Status RunMigrate(const MigrateArgs& args) {
  PgConnectionOptions options;
  options.dsn = args.database_url;
  options.application_name = "sluice migrate";
  options.statement_timeout = std::chrono::milliseconds(0);  // DDL may wait on locks
  SLUICE_ASSIGN_OR_RETURN(PgConnection conn, PgConnection::Connect(options));
  if (args.check) {
    SLUICE_RETURN_IF_ERROR(CheckSchema(conn));
    std::printf("sluice schema is at version %d: current\n", RequiredSchemaVersion());
    return Status::Ok();
  }
  SLUICE_ASSIGN_OR_RETURN(MigrationResult result, Migrate(conn, args.to_version));
  if (result.from_version == result.to_version) {
    std::printf("sluice schema is at version %d: nothing to do\n", result.to_version);
  } else {
    std::printf("sluice schema migrated from version %d to %d\n", result.from_version,
                result.to_version);
  }
  return Status::Ok();
}

}  // namespace

void AddMigrateCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MigrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "migrate", "Create or upgrade sluice's tables (schema `sluice`) in PostgreSQL");
  cmd->add_option("--database-url", args->database_url,
                  "PostgreSQL connection string (postgresql://user@host/db or key=value)")
      ->envname("SLUICE_DATABASE_URL")
      ->required();
  cmd->add_flag("--check", args->check,
                "Only check that the schema matches this sluice; exit 1 when it does not");
  cmd->add_option("--to", args->to_version, "Migrate up to this version (default: the latest)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([args, exit_code] {
    Status status = RunMigrate(*args);
    if (status.ok()) {
      *exit_code = 0;
      return;
    }
    std::fprintf(stderr, "sluice: error: %s\n", status.message().c_str());
    *exit_code = status.code() == StatusCode::kInvalidArgument ? 2 : 1;
  });
}

}  // namespace sluice::cli
