// Test helpers that build safetensors files and model directories on disk, so tests of the
// loaders (and of layers above them) run against real files, good and corrupt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "model/tensor.h"

namespace sluice::testing {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class ScopedTempDir {
 public:
  ScopedTempDir();
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Writes `bytes` to `path`, creating parent directories; aborts the test binary on failure.
void WriteFile(const std::filesystem::path& path, std::string_view bytes);

// Accumulates tensors and serialises them in the safetensors layout: 8-byte little-endian
// header length, JSON header, data section in insertion order.
class SafetensorsWriter {
 public:
  // Raw bytes for any dtype; `bytes` must be numel(shape) * DTypeSize(dtype) long.
  void Add(std::string name, DType dtype, std::vector<int64_t> shape, std::string bytes);
  // Float values stored as F32, F16 or BF16 (rounded to nearest even).
  void AddFloats(std::string name, DType dtype, std::vector<int64_t> shape,
                 const std::vector<float>& values);
  // numel(shape) values from a fixed pseudo-random sequence (normal-ish, std ~0.02).
  void AddRandom(std::string name, DType dtype, std::vector<int64_t> shape, uint32_t seed = 1);
  void SetMetadata(std::string key, std::string value);
  // Inserts `n` unused bytes before the next tensor's data (offsets stay consistent), so data
  // can be made to start at any alignment.
  void AddPadding(size_t n);

  // The JSON header alone.
  std::string Header() const;
  // The whole file.
  std::string Serialize() const;
  void WriteTo(const std::filesystem::path& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    size_t begin;
    size_t end;
  };
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::string data_;
};

// A file made of an explicit length prefix, header text and data bytes, for corrupt cases.
std::string RawSafetensors(uint64_t header_len, std::string_view header, std::string_view data);
// The same with the length prefix equal to header.size().
std::string RawSafetensors(std::string_view header, std::string_view data);

}  // namespace sluice::testing
