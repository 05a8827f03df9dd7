#include <string>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/kernel_image.cuh"

namespace sluice::cuda {
namespace {

__global__ void ProbeKernel() {}

}  // namespace

std::string CompiledArchitectures() { return SLUICE_CUDA_ARCHS; }

Status CheckKernelImage(int device) {
  SLUICE_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  int major = 0;
  int minor = 0;
  SLUICE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  SLUICE_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  cudaFuncAttributes attributes{};
  const cudaError_t probe = cudaFuncGetAttributes(&attributes, ProbeKernel);
  if (probe == cudaSuccess && major >= 8) return Status::Ok();
  // Not a sticky error: clear it so that the next call on this thread does not report it.
  static_cast<void>(cudaGetLastError());
  const std::string device_name = "device " + std::to_string(device) + " (compute capability " +
                                  std::to_string(major) + "." + std::to_string(minor);
  if (major < 8) {
    return Unimplemented(device_name +
                         ") is too old: the CUDA backend needs 8.0 or newer (Ampere, Ada, Hopper)");
  }
  if (probe != cudaErrorNoKernelImageForDevice && probe != cudaErrorInvalidDeviceFunction) {
    return CudaStatus(probe, "cudaFuncGetAttributes");
  }
  // (fmt's compile-time format checks do not build under nvcc, hence the concatenation.)
  return Unimplemented("this build has no GPU code for " + device_name + "; compiled for " +
                       CompiledArchitectures() + "): rebuild with -DSLUICE_CUDA_ARCHITECTURES=" +
                       std::to_string(major) + std::to_string(minor));
}

}  // namespace sluice::cuda
