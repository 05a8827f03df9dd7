#include "model/safetensors_file.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "model/json_util.h"

namespace sluice {
namespace {

// Closes a file descriptor on every path out of Open().
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

uint64_t LoadLittleEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// NotFound / InvalidArgument for paths that are not an openable regular file.
Status CheckRegularFile(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return NotFound(fmt::format("{} not found", path.string()));
  }
  if (std::filesystem::is_directory(status)) {
    return InvalidArgument(fmt::format("{} is a directory, not a safetensors file", path.string()));
  }
  if (!std::filesystem::is_regular_file(status)) {
    return InvalidArgument(fmt::format("{} is not a regular file", path.string()));
  }
  return Status::Ok();
}

// Checks the 8-byte length prefix against the file size; returns the header length.
StatusOr<uint64_t> CheckHeaderLength(const std::filesystem::path& path, uint64_t file_size,
                                     uint64_t header_len) {
  if (header_len > SafetensorsFile::kMaxHeaderBytes) {
    return DataLoss(fmt::format("{}: header length {} is over the limit of {} bytes", path.string(),
                                header_len, SafetensorsFile::kMaxHeaderBytes));
  }
  if (header_len > file_size - 8) {
    return DataLoss(fmt::format(
        "{}: header length {} runs past the end of the file ({} bytes): truncated or not a "
        "safetensors file",
        path.string(), header_len, file_size));
  }
  if (header_len < 2) {
    return DataLoss(fmt::format("{}: header length {} is too short for a JSON object",
                                path.string(), header_len));
  }
  return header_len;
}

// Reads a JSON array of non-negative integers.
bool ReadUnsignedArray(simdjson::dom::element element, std::vector<uint64_t>* out) {
  simdjson::dom::array array;
  if (element.get_array().get(array) != simdjson::SUCCESS) return false;
  for (simdjson::dom::element item : array) {
    uint64_t v;
    if (item.get_uint64().get(v) != simdjson::SUCCESS) return false;
    out->push_back(v);
  }
  return true;
}

struct ParsedEntry {
  TensorView view;
  uint64_t begin = 0;
  uint64_t end = 0;
};

}  // namespace

StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::filesystem::path& path) {
  SLUICE_RETURN_IF_ERROR(CheckRegularFile(path));
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return DataLoss(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return DataLoss(fmt::format("cannot stat {}: {}", path.string(), std::strerror(errno)));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    return DataLoss(
        fmt::format("{} is {} bytes, too small for a safetensors file (8-byte header length first)",
                    path.string(), file_size));
  }

  SafetensorsFile file;
  file.path_ = path;
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map == MAP_FAILED) {
    return DataLoss(fmt::format("cannot map {}: {}", path.string(), std::strerror(errno)));
  }
  file.map_ = map;  // owned from here; the destructor unmaps on every error below
  file.size_ = file_size;
  const auto* bytes = static_cast<const unsigned char*>(map);

  SLUICE_ASSIGN_OR_RETURN(const uint64_t header_len,
                          CheckHeaderLength(path, file_size, LoadLittleEndian64(bytes)));
  file.header_size_ = header_len;
  const std::byte* data_section = static_cast<const std::byte*>(map) + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;

  auto fail = [&path](std::string_view tensor, std::string_view what) {
    return DataLoss(fmt::format("{}: tensor \"{}\": {}", path.string(), tensor, what));
  };

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(reinterpret_cast<const char*>(bytes + 8), header_len).get(root);
      error) {
    return DataLoss(
        fmt::format("{}: header is not valid JSON: {}", path.string(), JsonErrorText(error)));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return DataLoss(fmt::format("{}: header is not a JSON object", path.string()));
  }

  std::vector<ParsedEntry> entries;
  for (auto [key, value] : object) {
    if (key == "__metadata__") {
      simdjson::dom::object meta;
      if (value.get_object().get(meta) != simdjson::SUCCESS) {
        return DataLoss(fmt::format("{}: __metadata__ is not an object", path.string()));
      }
      for (auto [meta_key, meta_value] : meta) {
        std::string_view s;
        if (meta_value.get_string().get(s) == simdjson::SUCCESS) {
          file.metadata_[std::string(meta_key)] = std::string(s);
        }
      }
      continue;
    }
    ParsedEntry entry;
    entry.view.name = std::string(key);
    simdjson::dom::object info;
    if (value.get_object().get(info) != simdjson::SUCCESS) {
      return fail(key, "entry is not an object");
    }
    std::string_view dtype_name;
    if (info["dtype"].get_string().get(dtype_name) != simdjson::SUCCESS) {
      return fail(key, "missing or non-string \"dtype\"");
    }
    StatusOr<DType> dtype = ParseDType(dtype_name);
    if (!dtype.ok()) {
      return InvalidArgument(fmt::format("{}: tensor \"{}\": unsupported dtype \"{}\"",
                                         path.string(), key, dtype_name));
    }
    entry.view.dtype = *dtype;

    simdjson::dom::element shape_element;
    std::vector<uint64_t> shape;
    if (info["shape"].get(shape_element) != simdjson::SUCCESS ||
        !ReadUnsignedArray(shape_element, &shape)) {
      return fail(key, "missing \"shape\" or not an array of non-negative integers");
    }
    uint64_t numel = 1;
    for (uint64_t d : shape) {
      if (d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel)) {
        return fail(key, "shape overflows 64 bits");
      }
      entry.view.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, DTypeSize(*dtype), &nbytes)) {
      return fail(key, "byte size overflows 64 bits");
    }

    simdjson::dom::element offsets_element;
    std::vector<uint64_t> offsets;
    if (info["data_offsets"].get(offsets_element) != simdjson::SUCCESS ||
        !ReadUnsignedArray(offsets_element, &offsets) || offsets.size() != 2) {
      return fail(key, "missing \"data_offsets\" or not two non-negative integers");
    }
    entry.begin = offsets[0];
    entry.end = offsets[1];
    if (entry.begin > entry.end) {
      return fail(key, fmt::format("data_offsets [{}, {}] are reversed", entry.begin, entry.end));
    }
    if (entry.end > data_size) {
      return fail(key, fmt::format("data_offsets [{}, {}] run past the data section ({} bytes): "
                                   "the file is truncated or the header is wrong",
                                   entry.begin, entry.end, data_size));
    }
    if (entry.end - entry.begin != nbytes) {
      return fail(key, fmt::format("data_offsets [{}, {}] hold {} bytes but {} {} needs {}",
                                   entry.begin, entry.end, entry.end - entry.begin, dtype_name,
                                   entry.view.ShapeString(), nbytes));
    }
    entry.view.data = data_section + entry.begin;
    entry.view.nbytes = static_cast<size_t>(nbytes);
    entries.push_back(std::move(entry));
  }

  // Overlapping byte ranges mean a corrupt or malicious header; empty tensors overlap nothing.
  std::vector<const ParsedEntry*> by_offset;
  for (const ParsedEntry& e : entries) {
    if (e.end > e.begin) by_offset.push_back(&e);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const ParsedEntry* a, const ParsedEntry* b) {
    return a->begin < b->begin || (a->begin == b->begin && a->end < b->end);
  });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      return fail(by_offset[i]->view.name,
                  fmt::format("data_offsets [{}, {}] overlap tensor \"{}\" [{}, {}]",
                              by_offset[i]->begin, by_offset[i]->end, by_offset[i - 1]->view.name,
                              by_offset[i - 1]->begin, by_offset[i - 1]->end));
    }
  }

  file.tensors_.reserve(entries.size());
  for (ParsedEntry& e : entries) file.tensors_.push_back(std::move(e.view));
  std::sort(file.tensors_.begin(), file.tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
  for (size_t i = 1; i < file.tensors_.size(); ++i) {
    if (file.tensors_[i].name == file.tensors_[i - 1].name) {
      return fail(file.tensors_[i].name, "listed twice in the header");
    }
  }
  return file;
}

StatusOr<std::string> SafetensorsFile::ReadHeaderBytes(const std::filesystem::path& path) {
  SLUICE_RETURN_IF_ERROR(CheckRegularFile(path));
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return DataLoss(fmt::format("cannot stat {}: {}", path.string(), ec.message()));
  if (file_size < 8) {
    return DataLoss(
        fmt::format("{} is {} bytes, too small for a safetensors file", path.string(), file_size));
  }
  std::ifstream in(path, std::ios::binary);
  std::string out(8, '\0');
  if (!in.read(out.data(), 8)) return DataLoss(fmt::format("cannot read {}", path.string()));
  SLUICE_ASSIGN_OR_RETURN(
      const uint64_t header_len,
      CheckHeaderLength(path, file_size,
                        LoadLittleEndian64(reinterpret_cast<const unsigned char*>(out.data()))));
  out.resize(8 + header_len);
  if (!in.read(out.data() + 8, static_cast<std::streamsize>(header_len))) {
    return DataLoss(fmt::format("cannot read the header of {}", path.string()));
  }
  return out;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      header_size_(std::exchange(other.header_size_, 0)),
      tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)) {
  other.tensors_.clear();
}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    Unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    header_size_ = std::exchange(other.header_size_, 0);
    tensors_ = std::move(other.tensors_);
    other.tensors_.clear();
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { Unmap(); }

void SafetensorsFile::Unmap() {
  if (map_ != nullptr) ::munmap(map_, size_);
  map_ = nullptr;
  size_ = 0;
}

std::string_view SafetensorsFile::header() const {
  if (map_ == nullptr) return {};
  return {static_cast<const char*>(map_) + 8, header_size_};
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorView& t, std::string_view n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

}  // namespace sluice
