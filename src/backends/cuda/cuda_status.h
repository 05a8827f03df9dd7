// Maps CUDA runtime and cuBLASLt error codes to Status. Out-of-memory and a missing or lost
// device become Unavailable (the device cannot take work); anything else is Internal.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string_view>

#include "common/status.h"

namespace sluice::cuda {

// Ok for cudaSuccess; otherwise "<what>: <cuda error name>: <description>".
Status CudaStatus(cudaError_t error, std::string_view what);
// Ok for CUBLAS_STATUS_SUCCESS; NOT_SUPPORTED becomes Unimplemented.
Status CublasStatus(cublasStatus_t status, std::string_view what);
// The status of the kernel launch just made on this thread (cudaGetLastError).
Status LaunchStatus(std::string_view kernel);

}  // namespace sluice::cuda

#define SLUICE_CUDA_RETURN_IF_ERROR(call) \
  SLUICE_RETURN_IF_ERROR(::sluice::cuda::CudaStatus((call), #call))
#define SLUICE_CUBLAS_RETURN_IF_ERROR(call) \
  SLUICE_RETURN_IF_ERROR(::sluice::cuda::CublasStatus((call), #call))
