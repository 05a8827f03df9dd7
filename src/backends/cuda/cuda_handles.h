// Owning, movable wrappers for the CUDA objects the backend holds: a stream, an event, a
// cuBLASLt handle and a pinned host buffer. Each is created on the current device.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "common/status.h"

namespace sluice::cuda {

// Moves `other`'s handle into a fresh object and leaves `other` empty.
template <typename Handle>
Handle TakeHandle(Handle& other) {
  return std::exchange(other, Handle{});
}

// A non-blocking stream (never synchronises with the legacy default stream).
class CudaStream {
 public:
  static StatusOr<CudaStream> Create();
  CudaStream() = default;
  CudaStream(CudaStream&& other) noexcept : stream_(TakeHandle(other.stream_)) {}
  CudaStream& operator=(CudaStream&& other) noexcept;
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  ~CudaStream();

  cudaStream_t get() const { return stream_; }
  // Waits for all work queued so far; returns the first asynchronous error it reports.
  Status Synchronize() const;

 private:
  explicit CudaStream(cudaStream_t stream) : stream_(stream) {}
  cudaStream_t stream_ = nullptr;
};

// An event for timing (kDefault) or ordering only (kNoTiming, cheaper).
class CudaEvent {
 public:
  enum class Kind { kDefault, kNoTiming };
  static StatusOr<CudaEvent> Create(Kind kind = Kind::kDefault);
  CudaEvent() = default;
  CudaEvent(CudaEvent&& other) noexcept : event_(TakeHandle(other.event_)) {}
  CudaEvent& operator=(CudaEvent&& other) noexcept;
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  ~CudaEvent();

  cudaEvent_t get() const { return event_; }
  Status Record(cudaStream_t stream) const;
  // Milliseconds between `start` and this event, both recorded and completed.
  StatusOr<float> ElapsedMsSince(const CudaEvent& start) const;

 private:
  explicit CudaEvent(cudaEvent_t event) : event_(event) {}
  cudaEvent_t event_ = nullptr;
};

// An instantiated CUDA graph: a captured forward pass replayed with one launch.
class CudaGraphExec {
 public:
  // Ends the capture under way on `stream` and instantiates what it recorded. The capture is
  // ended (and discarded) even when `capture_status` is an error, which is then returned.
  static StatusOr<CudaGraphExec> EndCapture(cudaStream_t stream, Status capture_status);
  CudaGraphExec() = default;
  CudaGraphExec(CudaGraphExec&& other) noexcept : exec_(TakeHandle(other.exec_)) {}
  CudaGraphExec& operator=(CudaGraphExec&& other) noexcept;
  CudaGraphExec(const CudaGraphExec&) = delete;
  CudaGraphExec& operator=(const CudaGraphExec&) = delete;
  ~CudaGraphExec();

  bool valid() const { return exec_ != nullptr; }
  Status Launch(cudaStream_t stream) const;

 private:
  explicit CudaGraphExec(cudaGraphExec_t exec) : exec_(exec) {}
  cudaGraphExec_t exec_ = nullptr;
};

class CublasLtHandle {
 public:
  static StatusOr<CublasLtHandle> Create();
  CublasLtHandle() = default;
  CublasLtHandle(CublasLtHandle&& other) noexcept : handle_(TakeHandle(other.handle_)) {}
  CublasLtHandle& operator=(CublasLtHandle&& other) noexcept;
  CublasLtHandle(const CublasLtHandle&) = delete;
  CublasLtHandle& operator=(const CublasLtHandle&) = delete;
  ~CublasLtHandle();

  cublasLtHandle_t get() const { return handle_; }

 private:
  explicit CublasLtHandle(cublasLtHandle_t handle) : handle_(handle) {}
  cublasLtHandle_t handle_ = nullptr;
};

// Page-locked host memory, so device-to-host copies run asynchronously at full speed.
class PinnedHostBuffer {
 public:
  static StatusOr<PinnedHostBuffer> Create(size_t bytes);
  PinnedHostBuffer() = default;
  PinnedHostBuffer(PinnedHostBuffer&& other) noexcept
      : data_(TakeHandle(other.data_)), bytes_(TakeHandle(other.bytes_)) {}
  PinnedHostBuffer& operator=(PinnedHostBuffer&& other) noexcept;
  PinnedHostBuffer(const PinnedHostBuffer&) = delete;
  PinnedHostBuffer& operator=(const PinnedHostBuffer&) = delete;
  ~PinnedHostBuffer();

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  PinnedHostBuffer(void* data, size_t bytes) : data_(data), bytes_(bytes) {}
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace sluice::cuda
