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

// One warp per row with the row in registers (WarpLayerNorm), for rows of a multiple of 8 up to
// 2048 wide, which covers the common encoders (384 to 2048 wide). The general kernel above
// takes the rest.
constexpr int kRowsPerBlock = 4;

template <typename T, int kVecs>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    AddLayerNormWarpKernel(AddLayerNormArgs args) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= args.rows) return;
  const size_t offset = static_cast<size_t>(row) * args.hidden;
  const auto* x = reinterpret_cast<const uint4*>(static_cast<const T*>(args.x) + offset);
  const auto* residual =
      args.residual != nullptr
          ? reinterpret_cast<const uint4*>(static_cast<const T*>(args.residual) + offset)
          : nullptr;
  kernels::WarpLayerNorm<T, kVecs>(x, residual, reinterpret_cast<const uint4*>(args.bias),
                                   args.hidden, static_cast<const T*>(args.gamma),
                                   static_cast<const T*>(args.beta), args.eps,
                                   static_cast<T*>(args.out) + offset,
                                   args.out_fp8 != nullptr ? args.out_fp8 + offset : nullptr);
}

template <typename T>
Status LaunchAddLayerNorm(const AddLayerNormArgs& args, cudaStream_t stream) {
  using kernels::Aligned16;
  const bool vectorizable =
      args.hidden % 8 == 0 && Aligned16(args.x) &&
      (args.residual == nullptr || Aligned16(args.residual)) && Aligned16(args.gamma) &&
      Aligned16(args.beta) && Aligned16(args.out) &&
      (args.bias == nullptr || Aligned16(args.bias)) &&
      (args.out_fp8 == nullptr || reinterpret_cast<uintptr_t>(args.out_fp8) % 8 == 0);
  const int blocks = (args.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  const bool warp = vectorizable && kernels::WithWarpLayerNormVecs(args.hidden, [&](auto vecs) {
                      AddLayerNormWarpKernel<T, decltype(vecs)::value>
                          <<<blocks, kRowsPerBlock * 32, 0, stream>>>(args);
                    });
  if (!warp) {
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
