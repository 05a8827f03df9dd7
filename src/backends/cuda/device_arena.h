// DeviceArena: the only owner of cudaMalloc on one GPU. It enforces a byte limit
// (--gpu-memory-limit) so a replica never takes more than its share, and reports running out
// as Unavailable instead of aborting. Workspaces are sized once from BatchLimits and carved
// with a DeviceRegion, so a forward pass allocates nothing.
//
// Thread-safety: Allocate() and buffer release may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>

#include "common/status.h"

namespace sluice::cuda {

class DeviceArena;

// Device memory taken from an arena and given back when destroyed. Movable, not copyable.
// REQUIRES: the arena outlives its buffers.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  friend class DeviceArena;
  DeviceBuffer(DeviceArena* arena, void* data, size_t bytes)
      : arena_(arena), data_(data), bytes_(bytes) {}
  void Release();

  DeviceArena* arena_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

class DeviceArena {
 public:
  // Every buffer and region slice starts on this boundary (cuBLASLt's preferred alignment).
  static constexpr size_t kAlignment = 256;

  // An arena on `device` that hands out at most `byte_limit` bytes; 0 means the memory free on
  // the device now. InvalidArgument for a device index that does not exist, Unavailable when
  // no device can be used.
  static StatusOr<std::unique_ptr<DeviceArena>> Create(int device, size_t byte_limit);

  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  // `bytes` of device memory, rounded up to kAlignment. Unavailable when the limit or the
  // device's memory would be exceeded.
  StatusOr<DeviceBuffer> Allocate(size_t bytes);

  int device() const { return device_; }
  size_t limit() const { return limit_; }
  size_t in_use() const;

  static size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

 private:
  friend class DeviceBuffer;
  DeviceArena(int device, size_t limit) : device_(device), limit_(limit) {}
  void Free(void* data, size_t bytes);

  const int device_;
  const size_t limit_;
  mutable std::mutex mutex_;
  size_t in_use_ = 0;  // GUARDED_BY(mutex_)
};

// Carves aligned slices out of one DeviceBuffer, front to back. Slices stay valid until
// Reset() or the region's destruction.
class DeviceRegion {
 public:
  DeviceRegion() = default;
  explicit DeviceRegion(DeviceBuffer buffer) : buffer_(std::move(buffer)) {}

  // `count` elements of T; Unavailable when the region is full.
  template <typename T>
  StatusOr<T*> Take(size_t count) {
    SLUICE_ASSIGN_OR_RETURN(void* p, TakeBytes(count * sizeof(T)));
    return static_cast<T*>(p);
  }
  StatusOr<void*> TakeBytes(size_t bytes);
  void Reset() { used_ = 0; }
  size_t used() const { return used_; }
  size_t capacity() const { return buffer_.bytes(); }

 private:
  DeviceBuffer buffer_;
  size_t used_ = 0;
};

}  // namespace sluice::cuda
