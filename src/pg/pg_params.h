// PgParams: the parameters of one libpq statement. Scalars that the server would have to parse
// (integers, bytea, arrays) travel in binary; free text travels as text and takes the type the
// statement gives it. Not thread-safe; build one per call.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class PgParams {
 public:
  PgParams() = default;

  // Text: the server infers the type from the statement (`$1::interval`, `$1::text`).
  PgParams& Text(std::string_view value);
  PgParams& Null();
  PgParams& Int32(int32_t value);
  PgParams& Int64(int64_t value);
  PgParams& Bytea(std::span<const uint8_t> value);
  PgParams& Bytea(std::string_view value);
  // One-dimensional arrays (binary array format).
  PgParams& ByteaArray(std::span<const std::string_view> values);
  PgParams& TextArray(std::span<const std::string> values);
  PgParams& Int64Array(std::span<const int64_t> values);

  int size() const { return static_cast<int>(formats_.size()); }
  const Oid* types() const { return types_.data(); }
  const int* formats() const { return formats_.data(); }
  const int* lengths() const { return lengths_.data(); }
  // Pointers into this object's storage; valid until it is changed or destroyed.
  std::vector<const char*> values() const;

 private:
  PgParams& Add(Oid type, int format, std::string bytes, bool is_null = false);
  std::string ArrayOf(Oid element_type, std::span<const std::string_view> elements);

  std::vector<std::string> storage_;
  std::vector<bool> nulls_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
  std::vector<int> lengths_;
};

}  // namespace sluice
