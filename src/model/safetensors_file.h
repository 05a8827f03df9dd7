// SafetensorsFile: one memory-mapped .safetensors file with a validated header. Every tensor's
// byte range is checked against the file before any view is handed out, so a truncated or
// lying file fails in Open() (DataLoss naming the file and tensor), never later on access.
// Thread-safety: immutable after Open(); safe to share. Movable (views stay valid), not copyable.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/tensor.h"

namespace sluice {

class SafetensorsFile {
 public:
  // Headers larger than this are refused: real ones are a few hundred KB at most.
  static constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

  // Maps and validates `path`. NotFound when it does not exist, InvalidArgument when it is not a
  // regular file, DataLoss for any violation of the format.
  static StatusOr<SafetensorsFile> Open(const std::filesystem::path& path);

  // Reads only the 8-byte length prefix and the JSON header of `path` (no mapping, no
  // validation beyond the length); cheap fingerprinting of a model's weights.
  static StatusOr<std::string> ReadHeaderBytes(const std::filesystem::path& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::filesystem::path& path() const { return path_; }
  size_t file_size() const { return size_; }
  // The JSON header text, as stored (may end in padding spaces).
  std::string_view header() const;
  // Every tensor, sorted by name. Views point into the mapping and live as long as this object.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The tensor called `name`, or nullptr.
  const TensorView* Find(std::string_view name) const;
  // The string entries of "__metadata__" (e.g. {"format": "pt"}).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  void Unmap();

  std::filesystem::path path_;
  void* map_ = nullptr;  // the whole file, PROT_READ; nullptr when moved from
  size_t size_ = 0;
  size_t header_size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace sluice
