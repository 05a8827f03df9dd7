// File and JSON helpers shared by the model layer's readers (config.json, modules.json, the
// safetensors index). Internal to src/model.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice {

// Upper bound for the small JSON files of a model directory; anything larger is not one.
inline constexpr size_t kMaxJsonFileBytes = size_t{64} << 20;

// Reads a whole regular file of at most `max_bytes`. NotFound when missing, InvalidArgument for
// a directory or a file over the limit, DataLoss when reading fails.
StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path, size_t max_bytes);

// A short description of a simdjson error ("TAPE_ERROR: ...").
std::string JsonErrorText(simdjson::error_code error);

// Reads and parses a JSON file into `parser`; the returned element lives as long as `parser`.
// Errors as ReadSmallFile, and InvalidArgument naming the file for invalid JSON.
StatusOr<simdjson::dom::element> ParseJsonFile(simdjson::dom::parser& parser,
                                               const std::filesystem::path& path);

}  // namespace sluice
