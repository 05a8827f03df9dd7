#include "backends/cuda/cuda_status.h"

#include <fmt/format.h>

namespace sluice::cuda {

Status CudaStatus(cudaError_t error, std::string_view what) {
  if (error == cudaSuccess) return Status::Ok();
  std::string message =
      fmt::format("{}: {}: {}", what, cudaGetErrorName(error), cudaGetErrorString(error));
  switch (error) {
    case cudaErrorMemoryAllocation:
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
    case cudaErrorECCUncorrectable:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalAddress:
      return Unavailable(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

Status CublasStatus(cublasStatus_t status, std::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  std::string message = fmt::format("{}: {}: {}", what, cublasLtGetStatusName(status),
                                    cublasLtGetStatusString(status));
  switch (status) {
    case CUBLAS_STATUS_ALLOC_FAILED:
    case CUBLAS_STATUS_NOT_INITIALIZED:
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return Unavailable(std::move(message));
    case CUBLAS_STATUS_NOT_SUPPORTED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return Unimplemented(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

Status LaunchStatus(std::string_view kernel) { return CudaStatus(cudaGetLastError(), kernel); }

}  // namespace sluice::cuda
