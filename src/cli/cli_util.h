// Shared helpers for subcommands: turning a Status into the one-line error and exit code that
// every command uses.
#pragma once

#include <cstddef>

#include "common/status.h"

namespace sluice::cli {

// Prints "sluice: error: <message>" to stderr for a non-ok status. Returns the exit code:
// 0 ok, 2 bad input or usage (invalid argument, too large, not found, out of range), 1 else.
int ReportStatus(const Status& status);

// Rewrites an "input K: ..." error from Embedder/Tokenizer into "line N: ..." where N is the
// 1-based input line, given that input 0 was line `first_line`.
Status RenumberInputError(const Status& status, size_t first_line);

}  // namespace sluice::cli
