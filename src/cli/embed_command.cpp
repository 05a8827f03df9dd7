// `sluice embed`: UTF-8 lines on stdin -> one JSON embedding per line on stdout.
#include "cli/commands.h"

namespace sluice::cli {

void AddEmbedCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("embed", "Embed UTF-8 lines from stdin; JSON lines out");
  cmd->callback([exit_code] { *exit_code = 1; });
}

}  // namespace sluice::cli
