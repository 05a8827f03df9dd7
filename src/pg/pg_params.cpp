#include "pg/pg_params.h"

#include <arpa/inet.h>

#include <cstring>

namespace sluice {
namespace {

// Type OIDs from pg_type.dat; stable across PostgreSQL versions.
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaArrayOid = 1001;
constexpr Oid kTextArrayOid = 1009;
constexpr Oid kInt8ArrayOid = 1016;

void PutBe32(std::string& out, uint32_t v) {
  uint32_t be = htonl(v);
  out.append(reinterpret_cast<const char*>(&be), sizeof(be));
}

void PutBe64(std::string& out, uint64_t v) {
  PutBe32(out, static_cast<uint32_t>(v >> 32));
  PutBe32(out, static_cast<uint32_t>(v & 0xffffffffu));
}

}  // namespace

PgParams& PgParams::Add(Oid type, int format, std::string bytes, bool is_null) {
  lengths_.push_back(static_cast<int>(bytes.size()));
  storage_.push_back(std::move(bytes));
  nulls_.push_back(is_null);
  types_.push_back(type);
  formats_.push_back(format);
  return *this;
}

PgParams& PgParams::Text(std::string_view value) { return Add(0, 0, std::string(value)); }

PgParams& PgParams::Null() { return Add(0, 0, std::string(), /*is_null=*/true); }

PgParams& PgParams::Int32(int32_t value) {
  std::string out;
  PutBe32(out, static_cast<uint32_t>(value));
  return Add(kInt4Oid, 1, std::move(out));
}

PgParams& PgParams::Int64(int64_t value) {
  std::string out;
  PutBe64(out, static_cast<uint64_t>(value));
  return Add(kInt8Oid, 1, std::move(out));
}

PgParams& PgParams::Bytea(std::span<const uint8_t> value) {
  return Add(kByteaOid, 1, std::string(reinterpret_cast<const char*>(value.data()), value.size()));
}

PgParams& PgParams::Bytea(std::string_view value) { return Add(kByteaOid, 1, std::string(value)); }

std::string PgParams::ArrayOf(Oid element_type, std::span<const std::string_view> elements) {
  // Binary array: ndim, has-nulls flag, element type, then (length, lower bound) per dimension
  // and (byte length, bytes) per element. An empty array has zero dimensions.
  std::string out;
  PutBe32(out, elements.empty() ? 0 : 1);
  PutBe32(out, 0);
  PutBe32(out, element_type);
  if (!elements.empty()) {
    PutBe32(out, static_cast<uint32_t>(elements.size()));
    PutBe32(out, 1);
  }
  for (std::string_view e : elements) {
    PutBe32(out, static_cast<uint32_t>(e.size()));
    out.append(e);
  }
  return out;
}

PgParams& PgParams::ByteaArray(std::span<const std::string_view> values) {
  return Add(kByteaArrayOid, 1, ArrayOf(kByteaOid, values));
}

PgParams& PgParams::TextArray(std::span<const std::string> values) {
  std::vector<std::string_view> views(values.begin(), values.end());
  return Add(kTextArrayOid, 1, ArrayOf(kTextOid, views));
}

PgParams& PgParams::Int64Array(std::span<const int64_t> values) {
  std::vector<std::string> encoded;
  encoded.reserve(values.size());
  for (int64_t v : values) {
    std::string e;
    PutBe64(e, static_cast<uint64_t>(v));
    encoded.push_back(std::move(e));
  }
  std::vector<std::string_view> views(encoded.begin(), encoded.end());
  return Add(kInt8ArrayOid, 1, ArrayOf(kInt8Oid, views));
}

std::vector<const char*> PgParams::values() const {
  std::vector<const char*> out;
  out.reserve(storage_.size());
  for (size_t i = 0; i < storage_.size(); ++i) {
    out.push_back(nulls_[i] ? nullptr : storage_[i].data());
  }
  return out;
}

}  // namespace sluice
