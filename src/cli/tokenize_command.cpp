// `sluice tokenize`: UTF-8 lines on stdin -> {"ids":[...]} per line on stdout.
#include "cli/commands.h"

namespace sluice::cli {

void AddTokenizeCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("tokenize", "Tokenize UTF-8 lines from stdin; JSON lines out");
  cmd->callback([exit_code] { *exit_code = 1; });
}

}  // namespace sluice::cli
