#include "cli/cli_util.h"

#include <charconv>
#include <cstdio>
#include <string>

namespace sluice::cli {

int ReportStatus(const Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "sluice: error: %s\n", status.message().c_str());
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kTooLarge:
    case StatusCode::kNotFound:
    case StatusCode::kOutOfRange:
    case StatusCode::kDataLoss:
      return 2;
    default:
      return 1;
  }
}

Status RenumberInputError(const Status& status, size_t first_line) {
  constexpr std::string_view kPrefix = "input ";
  const std::string& message = status.message();
  if (!message.starts_with(kPrefix)) return status;
  size_t index = 0;
  const char* begin = message.data() + kPrefix.size();
  auto [end, ec] = std::from_chars(begin, message.data() + message.size(), index);
  if (ec != std::errc() || end == begin) return status;
  return Status(status.code(), "line " + std::to_string(first_line + index) + std::string(end));
}

}  // namespace sluice::cli
