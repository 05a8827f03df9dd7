// Each `sluice` subcommand registers itself on the CLI11 app here. A command's callback stores
// its process exit code in `*exit_code` (0 ok, 1 runtime error, 2 bad usage or input).
#pragma once

#include <CLI/CLI.hpp>

namespace sluice::cli {

void AddEmbedCommand(CLI::App& app, int* exit_code);
void AddMigrateCommand(CLI::App& app, int* exit_code);
void AddServeCommand(CLI::App& app, int* exit_code);
void AddTokenizeCommand(CLI::App& app, int* exit_code);

}  // namespace sluice::cli
