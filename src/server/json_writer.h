// JsonWriter: appends JSON text to a string without building a document. Floats are written
// with std::to_chars (shortest round-trip form); non-finite numbers, which JSON cannot carry,
// become null. The caller nests Begin/End calls correctly; commas are placed automatically.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class JsonWriter {
 public:
  JsonWriter() = default;

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The next value belongs to `key`. REQUIRES: inside an object.
  JsonWriter& Key(std::string_view key);

  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Float(float value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // [v0,v1,...] in one call, the hot path of every embedding response.
  JsonWriter& FloatArray(std::span<const float> values);

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }
  void Reserve(size_t bytes) { out_.reserve(bytes); }

 private:
  // Writes the comma owed before a value or key at the current level.
  void Separate();
  void AppendFloat(float value);

  std::string out_;
  // One entry per open object/array: whether it has no element yet.
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace sluice
