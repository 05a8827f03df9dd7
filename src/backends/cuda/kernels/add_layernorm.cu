#include <cuda_fp8.h>

#include <cstdint>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/add_layernorm.cuh"
#include "backends/cuda/kernels/device_util.cuh"

namespace sluice::cuda {
namespace {

using kernels::LayerNormRow;
using kernels::ToFloat;

constexpr int kThreads = 128;

template <typename T>
__global__ void __launch_bounds__(kThreads) AddLayerNormKernel(AddLayerNormArgs args) {
  extern __shared__ float row[];
  __shared__ float scratch[kThreads / 32];
  const size_t offset = static_cast<size_t>(blockIdx.x) * args.hidden;
  const T* x = static_cast<const T*>(args.x) + offset;
  const T* residual =
      args.residual != nullptr ? static_cast<const T*>(args.residual) + offset : nullptr;
  const T* bias = static_cast<const T*>(args.bias);
  for (int i = threadIdx.x; i < args.hidden; i += blockDim.x) {
    float v = ToFloat(x[i]);
    if (residual != nullptr) v += ToFloat(residual[i]);
    if (bias != nullptr) v += ToFloat(bias[i]);
    row[i] = v;
  }
  // Every read of the row is done before any write, so out may alias residual.
  __syncthreads();
  LayerNormRow(row, args.hidden, static_cast<const T*>(args.gamma),
               static_cast<const T*>(args.beta), args.eps, static_cast<T*>(args.out) + offset,
               scratch);
  if (args.out_fp8 != nullptr) {
    // Each thread reads back the elements it wrote itself.
    const T* out = static_cast<const T*>(args.out) + offset;
    for (int i = threadIdx.x; i < args.hidden; i += blockDim.x) {
      args.out_fp8[offset + i] =
          static_cast<uint8_t>(__nv_cvt_float_to_fp8(ToFloat(out[i]), __NV_SATFINITE, __NV_E4M3));
    }
  }
}

// One warp per row with the row in registers, 16-byte loads and stores: for rows of at most
// kVecs * 256 elements, which covers the common encoders (384 to 2048 wide). The general kernel
// above takes the rest.
constexpr int kRowsPerBlock = 4;

template <typename T>
struct Vec8 {
  uint4 bits;
  __device__ __forceinline__ float Get(int i) const {
    return ToFloat(reinterpret_cast<const T*>(&bits)[i]);
  }
  __device__ __forceinline__ void Set(int i, float v) {
    reinterpret_cast<T*>(&bits)[i] = kernels::FromFloat<T>(v);
  }
};

template <typename T, int kVecs>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    AddLayerNormWarpKernel(AddLayerNormArgs args) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= args.rows) return;
  const int lane = threadIdx.x & 31;
  const int vecs = args.hidden / 8;
  const size_t offset = static_cast<size_t>(row) * args.hidden;
  const auto* x = reinterpret_cast<const uint4*>(static_cast<const T*>(args.x) + offset);
  const auto* residual =
      args.residual != nullptr
          ? reinterpret_cast<const uint4*>(static_cast<const T*>(args.residual) + offset)
          : nullptr;
  const auto* bias = reinterpret_cast<const uint4*>(args.bias);
  // All loads first, so that every 16-byte access of the row is in flight at once.
  uint4 xa[kVecs], ra[kVecs], ba[kVecs];
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = k * 32 + lane;
    const bool in = i < vecs;
    xa[k] = in ? x[i] : make_uint4(0, 0, 0, 0);
    ra[k] = in && residual != nullptr ? residual[i] : make_uint4(0, 0, 0, 0);
    ba[k] = in && bias != nullptr ? bias[i] : make_uint4(0, 0, 0, 0);
  }
  float v[kVecs][8];
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const Vec8<T> a{xa[k]};
    const Vec8<T> b{ra[k]};
    const Vec8<T> c{ba[k]};
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      // Zero-filled vectors past the row end add nothing to the sums.
      v[k][e] = a.Get(e) + b.Get(e) + c.Get(e);
      sum += v[k][e];
    }
  }
  const float mean = kernels::WarpSum(sum) / static_cast<float>(args.hidden);
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
  const float inv = rsqrtf(kernels::WarpSum(sq) / static_cast<float>(args.hidden) + args.eps);
  const auto* gamma = reinterpret_cast<const uint4*>(args.gamma);
  const auto* beta = reinterpret_cast<const uint4*>(args.beta);
  auto* out = reinterpret_cast<uint4*>(static_cast<T*>(args.out) + offset);
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
    const int i = k * 32 + lane;
    if (i < vecs) {
      Vec8<T> g{gamma[i]};
      Vec8<T> b{beta[i]};
      Vec8<T> y;
#pragma unroll
      for (int e = 0; e < 8; ++e) y.Set(e, (v[k][e] - mean) * inv * g.Get(e) + b.Get(e));
      out[i] = y.bits;
      if (args.out_fp8 != nullptr) {
        // From the rounded 16-bit values, so the copy equals converting `out` afterwards.
        uint2 q;
        auto* qb = reinterpret_cast<__nv_fp8x2_storage_t*>(&q);
#pragma unroll
        for (int e = 0; e < 8; e += 2) {
          qb[e / 2] = __nv_cvt_float2_to_fp8x2(make_float2(y.Get(e), y.Get(e + 1)), __NV_SATFINITE,
                                               __NV_E4M3);
        }
        reinterpret_cast<uint2*>(args.out_fp8 + offset)[i] = q;
      }
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
Status LaunchAddLayerNorm(const AddLayerNormArgs& args, cudaStream_t stream) {
  const bool vectorizable =
      args.hidden % 8 == 0 && Aligned16(args.x) &&
      (args.residual == nullptr || Aligned16(args.residual)) && Aligned16(args.gamma) &&
      Aligned16(args.beta) && Aligned16(args.out) &&
      (args.bias == nullptr || Aligned16(args.bias)) &&
      (args.out_fp8 == nullptr || reinterpret_cast<uintptr_t>(args.out_fp8) % 8 == 0);
  const int blocks = (args.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (vectorizable && args.hidden <= 256) {
    AddLayerNormWarpKernel<T, 1><<<blocks, kRowsPerBlock * 32, 0, stream>>>(args);
  } else if (vectorizable && args.hidden <= 512) {
    AddLayerNormWarpKernel<T, 2><<<blocks, kRowsPerBlock * 32, 0, stream>>>(args);
  } else if (vectorizable && args.hidden <= 1024) {
    AddLayerNormWarpKernel<T, 4><<<blocks, kRowsPerBlock * 32, 0, stream>>>(args);
  } else if (vectorizable && args.hidden <= 2048) {
    AddLayerNormWarpKernel<T, 8><<<blocks, kRowsPerBlock * 32, 0, stream>>>(args);
  } else {
    const size_t smem = sizeof(float) * static_cast<size_t>(args.hidden);
    AddLayerNormKernel<T><<<args.rows, kThreads, smem, stream>>>(args);
  }
  return LaunchStatus("AddLayerNormKernel");
}

}  // namespace

Status AddLayerNorm(const AddLayerNormArgs& args, cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(kernels::CheckLayerNormShape(args.rows, args.hidden));
  if (args.rows == 0) return Status::Ok();
  return args.dtype == CudaDType::kF16 ? LaunchAddLayerNorm<__half>(args, stream)
                                       : LaunchAddLayerNorm<__nv_bfloat16>(args, stream);
}

}  // namespace sluice::cuda
