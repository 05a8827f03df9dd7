#include "safetensors_writer.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "common/check.h"

namespace sluice::testing {
namespace {

std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += c;
    }
  }
  return out;
}

size_t Numel(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

}  // namespace

ScopedTempDir::ScopedTempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "sluice-test-XXXXXX").string();
  SLUICE_CHECK(::mkdtemp(pattern.data()) != nullptr) << "mkdtemp failed";
  path_ = pattern;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  SLUICE_CHECK(out.good()) << "cannot write " << path;
}

void SafetensorsWriter::Add(std::string name, DType dtype, std::vector<int64_t> shape,
                            std::string bytes) {
  SLUICE_CHECK(bytes.size() == Numel(shape) * DTypeSize(dtype))
      << name << ": " << bytes.size() << " bytes for its shape and dtype";
  const size_t begin = data_.size();
  data_ += bytes;
  entries_.push_back({std::move(name), dtype, std::move(shape), begin, data_.size()});
}

void SafetensorsWriter::AddFloats(std::string name, DType dtype, std::vector<int64_t> shape,
                                  const std::vector<float>& values) {
  SLUICE_CHECK(values.size() == Numel(shape)) << name << ": value count does not match shape";
  std::string bytes;
  for (float v : values) {
    if (dtype == DType::kF32) {
      bytes.append(reinterpret_cast<const char*>(&v), sizeof(v));
      continue;
    }
    SLUICE_CHECK(dtype == DType::kF16 || dtype == DType::kBF16) << "AddFloats: float dtypes only";
    const uint16_t h = dtype == DType::kF16 ? FloatToHalf(v) : FloatToBFloat16(v);
    bytes.append(reinterpret_cast<const char*>(&h), sizeof(h));
  }
  Add(std::move(name), dtype, std::move(shape), std::move(bytes));
}

void SafetensorsWriter::AddRandom(std::string name, DType dtype, std::vector<int64_t> shape,
                                  uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  const size_t n = Numel(shape);
  if (dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16) {
    std::vector<float> values(n);
    for (float& v : values) v = dist(rng);
    AddFloats(std::move(name), dtype, std::move(shape), values);
    return;
  }
  std::string bytes(n * DTypeSize(dtype), '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0x7f);
  Add(std::move(name), dtype, std::move(shape), std::move(bytes));
}

void SafetensorsWriter::SetMetadata(std::string key, std::string value) {
  metadata_.emplace_back(std::move(key), std::move(value));
}

void SafetensorsWriter::AddPadding(size_t n) { data_.append(n, '\0'); }

std::string SafetensorsWriter::Header() const {
  std::string json = "{";
  bool first = true;
  if (!metadata_.empty()) {
    json += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata_.size(); ++i) {
      if (i > 0) json += ",";
      json += fmt::format("\"{}\":\"{}\"", JsonEscape(metadata_[i].first),
                          JsonEscape(metadata_[i].second));
    }
    json += "}";
    first = false;
  }
  for (const Entry& e : entries_) {
    if (!first) json += ",";
    first = false;
    json += fmt::format("\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                        JsonEscape(e.name), DTypeName(e.dtype), fmt::join(e.shape, ","), e.begin,
                        e.end);
  }
  json += "}";
  return json;
}

std::string SafetensorsWriter::Serialize() const { return RawSafetensors(Header(), data_); }

void SafetensorsWriter::WriteTo(const std::filesystem::path& path) const {
  WriteFile(path, Serialize());
}

std::string RawSafetensors(uint64_t header_len, std::string_view header, std::string_view data) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((header_len >> (8 * i)) & 0xff);
  out += header;
  out += data;
  return out;
}

std::string RawSafetensors(std::string_view header, std::string_view data) {
  return RawSafetensors(header.size(), header, data);
}

}  // namespace sluice::testing
