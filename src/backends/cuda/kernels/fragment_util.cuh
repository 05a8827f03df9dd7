// Device helpers of the tensor-core kernels (the attention kernels): shared-memory addresses,
// ldmatrix loads, 16-bit pairs in one register, 2^x. Included by .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/cuda/kernels/device_util.cuh"

namespace sluice::cuda::kernels {

__device__ __forceinline__ uint32_t SharedAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 matrices of 16-bit values from shared memory, the mma.sync m16k16 A fragment layout
// when lanes 0-15 address rows 0-15 of the first 8 columns and lanes 16-31 the next 8.
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], const void* p) {
  LdMatrixX4(r, SharedAddress(p));
}
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SharedAddress(p)));
}

// Two floats as one register of 16-bit values, the first in the low half.
template <typename T>
__device__ __forceinline__ uint32_t Pack(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t Pack<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t Pack<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// A register of two 16-bit values plus (lo, hi), added in float32.
template <typename T>
__device__ __forceinline__ uint32_t AddPair(uint32_t packed, T lo, T hi) {
  const T* v = reinterpret_cast<const T*>(&packed);
  return Pack<T>(ToFloat(v[0]) + ToFloat(lo), ToFloat(v[1]) + ToFloat(hi));
}

// 2^x on the special-function unit; flushing denormals is harmless for probabilities.
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Online softmax, one row held by a quad of lanes: folds this key tile's scores' max (this lane's
// quarter of the row, unscaled) into the row's running max in base 2 (scores times scale_log2),
// and returns the factor that rescales what was summed under the old max.
__device__ __forceinline__ float FoldRowMax(float tile_max, float scale_log2, float& row_max) {
  tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
  tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
  const float m_new = fmaxf(row_max, tile_max * scale_log2);
  const float alpha = Exp2(row_max - m_new);
  row_max = m_new;
  return alpha;
}

}  // namespace sluice::cuda::kernels
