#include "model/json_util.h"

#include <fstream>
#include <system_error>

#include <fmt/format.h>

namespace sluice {

StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path, size_t max_bytes) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return NotFound(fmt::format("{} not found", path.string()));
  }
  if (std::filesystem::is_directory(status)) {
    return InvalidArgument(fmt::format("{} is a directory, not a file", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return DataLoss(fmt::format("cannot open {}", path.string()));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return DataLoss(fmt::format("cannot read {}", path.string()));
  if (static_cast<uint64_t>(size) > max_bytes) {
    return InvalidArgument(
        fmt::format("{} is {} bytes, over the limit of {}", path.string(), size, max_bytes));
  }
  in.seekg(0, std::ios::beg);
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), size)) return DataLoss(fmt::format("cannot read {}", path.string()));
  return text;
}

std::string JsonErrorText(simdjson::error_code error) { return simdjson::error_message(error); }

StatusOr<simdjson::dom::element> ParseJsonFile(simdjson::dom::parser& parser,
                                               const std::filesystem::path& path) {
  SLUICE_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxJsonFileBytes));
  simdjson::dom::element root;
  if (auto error = parser.parse(text.data(), text.size()).get(root); error) {
    return InvalidArgument(
        fmt::format("{} is not valid JSON: {}", path.string(), JsonErrorText(error)));
  }
  return root;
}

}  // namespace sluice
