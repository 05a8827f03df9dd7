#include <cuda_fp8.h>

#include <string>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/device_util.cuh"
#include "backends/cuda/kernels/fp8_quantize.cuh"

namespace sluice::cuda {
namespace {

using kernels::ToFloat;

constexpr int kThreads = 256;

__device__ __forceinline__ uint8_t ToE4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

// One block: weights are quantized once at start-up, so a simple grid-stride reduction will do.
template <typename T>
__global__ void __launch_bounds__(kThreads) AbsMaxScaleKernel(const T* x, size_t n, float* scale) {
  __shared__ float scratch[kThreads / 32];
  float m = 0.0f;
  for (size_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, fabsf(ToFloat(x[i])));
  m = kernels::WarpMax(m);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) total = fmaxf(total, scratch[w]);
    *scale = total > 0.0f ? total / kE4m3Max : 1.0f;
  }
}

template <typename T>
__global__ void ScaleToE4m3Kernel(const T* x, size_t n, const float* scale, uint8_t* y) {
  const float inv = scale != nullptr ? 1.0f / *scale : 1.0f;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    y[i] = ToE4m3(ToFloat(x[i]) * inv);
  }
}

int Blocks(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? blocks : 4096);
}

template <typename T>
Status Launch(const void* x, size_t n, float* scale, uint8_t* y, cudaStream_t stream) {
  if (scale != nullptr) {
    AbsMaxScaleKernel<T><<<1, kThreads, 0, stream>>>(static_cast<const T*>(x), n, scale);
    SLUICE_RETURN_IF_ERROR(LaunchStatus("AbsMaxScaleKernel"));
  }
  ScaleToE4m3Kernel<T><<<Blocks(n), kThreads, 0, stream>>>(static_cast<const T*>(x), n, scale, y);
  return LaunchStatus("ScaleToE4m3Kernel");
}

Status Check(const void* x, size_t n, const uint8_t* y) {
  if (n > 0 && (x == nullptr || y == nullptr)) {
    return InvalidArgument("fp8 conversion of " + std::to_string(n) + " values without buffers");
  }
  return Status::Ok();
}

}  // namespace

Status QuantizeWeightE4m3(CudaDType dtype, const void* x, size_t n, float* scale, uint8_t* y,
                          cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(Check(x, n, y));
  if (scale == nullptr) return InvalidArgument("fp8 weight quantization without a scale");
  if (n == 0) return Status::Ok();
  return dtype == CudaDType::kF16 ? Launch<__half>(x, n, scale, y, stream)
                                  : Launch<__nv_bfloat16>(x, n, scale, y, stream);
}

Status ConvertToE4m3(CudaDType dtype, const void* x, size_t n, uint8_t* y, cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(Check(x, n, y));
  if (n == 0) return Status::Ok();
  return dtype == CudaDType::kF16 ? Launch<__half>(x, n, nullptr, y, stream)
                                  : Launch<__nv_bfloat16>(x, n, nullptr, y, stream);
}

}  // namespace sluice::cuda
