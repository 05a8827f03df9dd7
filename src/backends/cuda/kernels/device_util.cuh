// Device-side helpers shared by the kernels: 16-bit <-> float conversion, block reductions and
// the LayerNorm of one row held in shared memory. Included by .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <string>
#include <type_traits>

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

// Eight 16-bit values in one 16-byte vector.
template <typename T>
struct Vec8 {
  uint4 bits;
  __device__ __forceinline__ float Get(int i) const {
    return ToFloat(reinterpret_cast<const T*>(&bits)[i]);
  }
  __device__ __forceinline__ void Set(int i, float v) {
    reinterpret_cast<T*>(&bits)[i] = FromFloat<T>(v);
  }
};

// Widest row WarpLayerNorm takes with kVecs 16-byte vectors per lane.
template <int kVecs>
inline constexpr int kWarpLayerNormMaxHidden = kVecs * 256;

// out = LayerNorm(a + b + c) of one row of `hidden` elements (a multiple of 8), by one warp with
// the row in registers: 16-byte loads, all issued before any arithmetic so that the whole row
// is in flight at once. b and c may be null (nothing added). With out_fp8, also writes an E4M3
// copy of the rounded 16-bit output. REQUIRES: hidden <= kWarpLayerNormMaxHidden<kVecs>,
// every pointer 16-byte aligned (out_fp8 8-byte aligned), all 32 lanes call it.
template <typename T, int kVecs>
__device__ __forceinline__ void WarpLayerNorm(const uint4* a, const uint4* b, const uint4* c,
                                              int hidden, const T* gamma, const T* beta, float eps,
                                              T* out, uint8_t* out_fp8) {
  const int lane = threadIdx.x & 31;
  const int vecs = hidden / 8;
  uint4 av[kVecs], bv[kVecs], cv[kVecs];
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = k * 32 + lane;
    const bool in = i < vecs;
    av[k] = in ? a[i] : make_uint4(0, 0, 0, 0);
    bv[k] = in && b != nullptr ? b[i] : make_uint4(0, 0, 0, 0);
    cv[k] = in && c != nullptr ? c[i] : make_uint4(0, 0, 0, 0);
  }
  float v[kVecs][8];
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const Vec8<T> x{av[k]};
    const Vec8<T> y{bv[k]};
    const Vec8<T> z{cv[k]};
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      // Zero-filled vectors past the row end add nothing to the sums.
      v[k][e] = x.Get(e) + y.Get(e) + z.Get(e);
      sum += v[k][e];
    }
  }
  const float mean = WarpSum(sum) / static_cast<float>(hidden);
  float sq = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    if (k * 32 + lane < vecs) {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float d = v[k][e] - mean;
        sq = fmaf(d, d, sq);
      }
    }
  }
  const float inv = rsqrtf(WarpSum(sq) / static_cast<float>(hidden) + eps);
  const auto* g = reinterpret_cast<const uint4*>(gamma);
  const auto* be = reinterpret_cast<const uint4*>(beta);
  auto* o = reinterpret_cast<uint4*>(out);
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = k * 32 + lane;
    if (i < vecs) {
      const Vec8<T> gv{g[i]};
      const Vec8<T> bev{be[i]};
      Vec8<T> y;
#pragma unroll
      for (int e = 0; e < 8; ++e) y.Set(e, (v[k][e] - mean) * inv * gv.Get(e) + bev.Get(e));
      o[i] = y.bits;
      if (out_fp8 != nullptr) {
        // From the rounded 16-bit values, so the copy equals converting `out` afterwards.
        uint2 q;
        auto* qb = reinterpret_cast<__nv_fp8x2_storage_t*>(&q);
#pragma unroll
        for (int e = 0; e < 8; e += 2) {
          qb[e / 2] = __nv_cvt_float2_to_fp8x2(make_float2(y.Get(e), y.Get(e + 1)), __NV_SATFINITE,
                                               __NV_E4M3);
        }
        reinterpret_cast<uint2*>(out_fp8)[i] = q;
      }
    }
  }
}

// Calls launch(std::integral_constant<int, kVecs>{}) with the vectors per lane WarpLayerNorm
// needs for a row of `hidden` (1, 2, 4 or 8); false, launching nothing, when the row is wider
// than it takes.
template <typename Launch>
bool WithWarpLayerNormVecs(int hidden, Launch&& launch) {
  if (hidden <= kWarpLayerNormMaxHidden<1>) {
    launch(std::integral_constant<int, 1>{});
  } else if (hidden <= kWarpLayerNormMaxHidden<2>) {
    launch(std::integral_constant<int, 2>{});
  } else if (hidden <= kWarpLayerNormMaxHidden<4>) {
    launch(std::integral_constant<int, 4>{});
  } else if (hidden <= kWarpLayerNormMaxHidden<8>) {
    launch(std::integral_constant<int, 8>{});
  } else {
    return false;
  }
  return true;
}

inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

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
