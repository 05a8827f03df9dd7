#include "backends/cuda/cuda_handles.h"

#include "backends/cuda/cuda_status.h"

namespace sluice::cuda {

// Destructors cannot report errors; a failure to release here means the context is already
// gone, and nothing useful is left to do with it.

StatusOr<CudaStream> CudaStream::Create() {
  cudaStream_t stream = nullptr;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return CudaStream(stream);
}

CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
  if (this != &other) {
    if (stream_ != nullptr) static_cast<void>(cudaStreamDestroy(stream_));
    stream_ = TakeHandle(other.stream_);
  }
  return *this;
}

CudaStream::~CudaStream() {
  if (stream_ != nullptr) static_cast<void>(cudaStreamDestroy(stream_));
}

Status CudaStream::Synchronize() const {
  return CudaStatus(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

StatusOr<CudaEvent> CudaEvent::Create(Kind kind) {
  cudaEvent_t event = nullptr;
  unsigned flags = kind == Kind::kNoTiming ? cudaEventDisableTiming : cudaEventDefault;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&event, flags));
  return CudaEvent(event);
}

CudaEvent& CudaEvent::operator=(CudaEvent&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) static_cast<void>(cudaEventDestroy(event_));
    event_ = TakeHandle(other.event_);
  }
  return *this;
}

CudaEvent::~CudaEvent() {
  if (event_ != nullptr) static_cast<void>(cudaEventDestroy(event_));
}

Status CudaEvent::Record(cudaStream_t stream) const {
  return CudaStatus(cudaEventRecord(event_, stream), "cudaEventRecord");
}

StatusOr<float> CudaEvent::ElapsedMsSince(const CudaEvent& start) const {
  SLUICE_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(event_));
  float ms = 0;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

StatusOr<CudaGraphExec> CudaGraphExec::EndCapture(cudaStream_t stream, Status capture_status) {
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  if (!capture_status.ok() || end != cudaSuccess) {
    if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
    SLUICE_RETURN_IF_ERROR(capture_status);
    return CudaStatus(end, "cudaStreamEndCapture");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  static_cast<void>(cudaGraphDestroy(graph));
  SLUICE_CUDA_RETURN_IF_ERROR(made);
  return CudaGraphExec(exec);
}

CudaGraphExec& CudaGraphExec::operator=(CudaGraphExec&& other) noexcept {
  if (this != &other) {
    if (exec_ != nullptr) static_cast<void>(cudaGraphExecDestroy(exec_));
    exec_ = TakeHandle(other.exec_);
  }
  return *this;
}

CudaGraphExec::~CudaGraphExec() {
  if (exec_ != nullptr) static_cast<void>(cudaGraphExecDestroy(exec_));
}

Status CudaGraphExec::Launch(cudaStream_t stream) const {
  return CudaStatus(cudaGraphLaunch(exec_, stream), "cudaGraphLaunch");
}

StatusOr<CublasLtHandle> CublasLtHandle::Create() {
  cublasLtHandle_t handle = nullptr;
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&handle));
  return CublasLtHandle(handle);
}

CublasLtHandle& CublasLtHandle::operator=(CublasLtHandle&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) static_cast<void>(cublasLtDestroy(handle_));
    handle_ = TakeHandle(other.handle_);
  }
  return *this;
}

CublasLtHandle::~CublasLtHandle() {
  if (handle_ != nullptr) static_cast<void>(cublasLtDestroy(handle_));
}

StatusOr<PinnedHostBuffer> PinnedHostBuffer::Create(size_t bytes) {
  void* data = nullptr;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaMallocHost(&data, bytes == 0 ? 1 : bytes));
  return PinnedHostBuffer(data, bytes);
}

PinnedHostBuffer& PinnedHostBuffer::operator=(PinnedHostBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) static_cast<void>(cudaFreeHost(data_));
    data_ = TakeHandle(other.data_);
    bytes_ = TakeHandle(other.bytes_);
  }
  return *this;
}

PinnedHostBuffer::~PinnedHostBuffer() {
  if (data_ != nullptr) static_cast<void>(cudaFreeHost(data_));
}

}  // namespace sluice::cuda
