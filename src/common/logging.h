// Process-wide logging through spdlog. Log lines go to stderr so that stdout stays free for
// command output (`sluice embed` writes JSON lines there).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/status.h"

namespace sluice {

// Sets the log level from a name: trace, debug, info, warn, error, off.
// REQUIRES: called before other threads log.
Status InitLogging(std::string_view level);

}  // namespace sluice

#define SLUICE_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define SLUICE_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define SLUICE_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define SLUICE_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
