#include "model/hf_config.h"

#include <simdjson.h>

#include <fmt/format.h>

#include "model/json_util.h"

namespace sluice {

StatusOr<HfConfig> HfConfig::Parse(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root); error) {
    return InvalidArgument(fmt::format("config.json is not valid JSON: {}", JsonErrorText(error)));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return InvalidArgument("config.json is not a JSON object");
  }

  HfConfig config;
  for (auto [key_view, value] : object) {
    const std::string key(key_view);
    if (key == "model_type") {
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS) {
        return InvalidArgument("config.json: \"model_type\" is not a string");
      }
      config.model_type_ = std::string(s);
    } else if (key == "architectures") {
      simdjson::dom::array array;
      config.architectures_.clear();  // a repeated key wins, as in Python's json
      if (value.is_null()) continue;
      if (value.get_array().get(array) != simdjson::SUCCESS) {
        return InvalidArgument("config.json: \"architectures\" is not an array of strings");
      }
      for (simdjson::dom::element item : array) {
        std::string_view s;
        if (item.get_string().get(s) != simdjson::SUCCESS) {
          return InvalidArgument("config.json: \"architectures\" is not an array of strings");
        }
        config.architectures_.emplace_back(s);
      }
      continue;
    }
    switch (value.type()) {
      case simdjson::dom::element_type::INT64:
        config.scalars_[key] = value.get_int64().value_unsafe();
        break;
      case simdjson::dom::element_type::UINT64: {
        // Only values above INT64_MAX land here; keep them as an approximate double.
        config.scalars_[key] = static_cast<double>(value.get_uint64().value_unsafe());
        break;
      }
      case simdjson::dom::element_type::DOUBLE:
        config.scalars_[key] = value.get_double().value_unsafe();
        break;
      case simdjson::dom::element_type::STRING:
        config.scalars_[key] = std::string(value.get_string().value_unsafe());
        break;
      case simdjson::dom::element_type::BOOL:
        config.scalars_[key] = value.get_bool().value_unsafe();
        break;
      default:
        break;  // nested objects, arrays and null are left to the code that needs them
    }
  }
  return config;
}

StatusOr<HfConfig> HfConfig::Load(const std::filesystem::path& path) {
  SLUICE_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxJsonFileBytes));
  StatusOr<HfConfig> config = Parse(text);
  if (!config.ok()) return config.status().WithContext(path.string());
  return config;
}

std::optional<int64_t> HfConfig::GetInt(std::string_view key) const {
  auto it = scalars_.find(key);
  if (it == scalars_.end()) return std::nullopt;
  if (const int64_t* v = std::get_if<int64_t>(&it->second)) return *v;
  return std::nullopt;
}

std::optional<double> HfConfig::GetDouble(std::string_view key) const {
  auto it = scalars_.find(key);
  if (it == scalars_.end()) return std::nullopt;
  if (const double* v = std::get_if<double>(&it->second)) return *v;
  if (const int64_t* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
  return std::nullopt;
}

std::optional<std::string> HfConfig::GetString(std::string_view key) const {
  auto it = scalars_.find(key);
  if (it == scalars_.end()) return std::nullopt;
  if (const std::string* v = std::get_if<std::string>(&it->second)) return *v;
  return std::nullopt;
}

std::optional<bool> HfConfig::GetBool(std::string_view key) const {
  auto it = scalars_.find(key);
  if (it == scalars_.end()) return std::nullopt;
  if (const bool* v = std::get_if<bool>(&it->second)) return *v;
  return std::nullopt;
}

}  // namespace sluice
