// JsonWriter: appends compact JSON to a string without building a DOM. Floats are written with
// std::to_chars (shortest text that reads back to the same float). The caller nests calls
// correctly; commas and escaping are handled here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  // An object key; the next call writes its value.
  void Key(std::string_view key);

  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Float(float value);  // NaN and infinities become null (JSON has none)
  void Double(double value);
  void Bool(bool value);
  void Null();
  // Pre-serialised JSON, inserted as one value.
  void Raw(std::string_view json);

  void FloatArray(std::span<const float> values);
  void IntArray(std::span<const int32_t> values);

 private:
  // Writes the comma that separates this value from the previous sibling.
  void BeforeValue();

  std::string* out_;
  // One flag per open container: whether it already holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

// Appends `value` to `out` as a quoted JSON string (RFC 8259 escaping; input is UTF-8).
void AppendJsonString(std::string_view value, std::string* out);

}  // namespace sluice
