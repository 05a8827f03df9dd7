// Device-side helpers shared by the kernels: 16-bit <-> float conversion, block reductions and
// the LayerNorm of one row held in shared memory. Included by .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <string>

#include "common/status.h"

namespace sluice::cuda::kernels {

// Widest row the LayerNorm kernels take (the row lives in shared memory as floats).
inline constexpr int kMaxLayerNormHidden = 8192;

__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T FromFloat(float x);
template <>
__device__ __forceinline__ __half FromFloat<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// Sum of `v` over the block, returned to every thread. `scratch` holds one float per warp.
// REQUIRES: blockDim.x is a multiple of 32 and every thread of the block calls it.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // the previous call's readers are done with scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < warps; ++i) total += scratch[i];
  return total;
}

// LayerNorm of the float row `row` (shared memory, `hidden` long) into `out`. Two passes over
// the row (mean, then centred variance) avoid the cancellation of E[x^2] - E[x]^2.
template <typename T>
__device__ void LayerNormRow(const float* row, int hidden, const T* gamma, const T* beta, float eps,
                             T* out, float* scratch) {
  float sum = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) sum += row[i];
  const float mean = BlockSum(sum, scratch) / static_cast<float>(hidden);
  float sq = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float d = row[i] - mean;
    sq += d * d;
  }
  const float var = BlockSum(sq, scratch) / static_cast<float>(hidden);
  const float inv = rsqrtf(var + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    out[i] = FromFloat<T>((row[i] - mean) * inv * ToFloat(gamma[i]) + ToFloat(beta[i]));
  }
}

// Host-side check shared by the LayerNorm launchers. (fmt's compile-time format checks do not
// pass nvcc's front end, so .cu files build messages by hand.)
inline Status CheckLayerNormShape(int rows, int hidden) {
  if (rows < 0 || hidden <= 0 || hidden > kMaxLayerNormHidden) {
    return InvalidArgument("LayerNorm over " + std::to_string(rows) + " rows of width " +
                           std::to_string(hidden) + " (width must be in 1.." +
                           std::to_string(kMaxLayerNormHidden) + ")");
  }
  return Status::Ok();
}

}  // namespace sluice::cuda::kernels
