// sluice: the command-line entry point. Each subcommand lives in its own <name>_command.cpp.
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "common/logging.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"sluice: fast text embeddings next to PostgreSQL", "sluice"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(sluice::VersionString()));
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (default: info for services, warn for "
                 "one-shot commands, whose stderr carries only errors)")
      ->envname("SLUICE_LOG_LEVEL");

  int exit_code = 0;
  app.parse_complete_callback([&] {
    if (log_level.empty()) {
      bool service = false;
      for (const CLI::App* sub : app.get_subcommands()) {
        service |= sub->get_name() == "serve" || sub->get_name() == "worker";
      }
      log_level = service ? "info" : "warn";
    }
    sluice::Status s = sluice::InitLogging(log_level);
    if (!s.ok()) throw CLI::ValidationError("--log-level", s.message());
  });
  sluice::cli::AddEmbedCommand(app, &exit_code);
  sluice::cli::AddMigrateCommand(app, &exit_code);
  sluice::cli::AddServeCommand(app, &exit_code);
  sluice::cli::AddTokenizeCommand(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive as "errors" with exit code 0.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
