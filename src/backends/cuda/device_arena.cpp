#include "backends/cuda/device_arena.h"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <utility>

#include "backends/cuda/cuda_status.h"

namespace sluice::cuda {

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : arena_(std::exchange(other.arena_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    arena_ = std::exchange(other.arena_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { Release(); }

void DeviceBuffer::Release() {
  if (data_ != nullptr) arena_->Free(data_, bytes_);
  arena_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

StatusOr<std::unique_ptr<DeviceArena>> DeviceArena::Create(int device, size_t byte_limit) {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    // Not having a GPU is an environment condition, not a bug.
    static_cast<void>(cudaGetLastError());
    return Unavailable(fmt::format("no usable CUDA device: {}", cudaGetErrorString(error)));
  }
  if (device < 0 || device >= count) {
    return InvalidArgument(
        fmt::format("CUDA device {} does not exist ({} device(s) present)", device, count));
  }
  SLUICE_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  if (byte_limit == 0) {
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    SLUICE_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
    byte_limit = free_bytes;
  }
  return std::unique_ptr<DeviceArena>(new DeviceArena(device, byte_limit));
}

StatusOr<DeviceBuffer> DeviceArena::Allocate(size_t bytes) {
  const size_t rounded = AlignUp(bytes == 0 ? 1 : bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (rounded > limit_ - in_use_) {
      return Unavailable(
          fmt::format("GPU memory limit reached on device {}: asked for {} bytes, {} of {} in use",
                      device_, rounded, in_use_, limit_));
    }
    in_use_ += rounded;
  }
  void* data = nullptr;
  Status status = CudaStatus(cudaMalloc(&data, rounded), "cudaMalloc");
  if (!status.ok()) {
    // A failed cudaMalloc leaves a non-sticky error behind; clear it for the next launch check.
    static_cast<void>(cudaGetLastError());
    std::lock_guard<std::mutex> lock(mutex_);
    in_use_ -= rounded;
    return status.WithContext(fmt::format("allocating {} bytes on device {}", rounded, device_));
  }
  return DeviceBuffer(this, data, rounded);
}

size_t DeviceArena::in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

void DeviceArena::Free(void* data, size_t bytes) {
  static_cast<void>(cudaFree(data));
  std::lock_guard<std::mutex> lock(mutex_);
  in_use_ -= bytes;
}

StatusOr<void*> DeviceRegion::TakeBytes(size_t bytes) {
  const size_t rounded = DeviceArena::AlignUp(bytes);
  if (rounded > buffer_.bytes() - used_) {
    return Unavailable(fmt::format("device workspace full: asked for {} bytes, {} of {} used",
                                   rounded, used_, buffer_.bytes()));
  }
  void* p = static_cast<std::byte*>(buffer_.data()) + used_;
  used_ += rounded;
  return p;
}

}  // namespace sluice::cuda
