// HfConfig: the top-level fields of a Hugging Face config.json, kept as typed scalars so each
// architecture (engine/) reads the keys it knows.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace sluice {

class HfConfig {
 public:
  // Parses config.json text. InvalidArgument when it is not a JSON object.
  static StatusOr<HfConfig> Parse(std::string_view json);
  // Reads and parses `path`. NotFound when missing.
  static StatusOr<HfConfig> Load(const std::filesystem::path& path);

  const std::string& model_type() const { return model_type_; }
  const std::vector<std::string>& architectures() const { return architectures_; }

  // Typed look-ups of top-level keys; nullopt when absent, null, or of another type
  // (an integer is also returned by GetDouble).
  std::optional<int64_t> GetInt(std::string_view key) const;
  std::optional<double> GetDouble(std::string_view key) const;
  std::optional<std::string> GetString(std::string_view key) const;
  std::optional<bool> GetBool(std::string_view key) const;

 private:
  using Scalar = std::variant<int64_t, double, std::string, bool>;

  std::string model_type_;
  std::vector<std::string> architectures_;
  std::map<std::string, Scalar, std::less<>> scalars_;
};

}  // namespace sluice
