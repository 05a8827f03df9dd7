#include <cstdint>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/device_util.cuh"
#include "backends/cuda/kernels/embedding_layernorm.cuh"

namespace sluice::cuda {
namespace {

using kernels::LayerNormRow;
using kernels::ToFloat;

constexpr int kThreads = 128;

template <typename T>
__global__ void __launch_bounds__(kThreads) EmbeddingLayerNormKernel(EmbeddingLayerNormArgs args) {
  extern __shared__ float row[];
  __shared__ float scratch[kThreads / 32];
  const int token = blockIdx.x;
  const int hidden = args.hidden;
  const T* word =
      static_cast<const T*>(args.word) + static_cast<size_t>(args.input_ids[token]) * hidden;
  const T* position = static_cast<const T*>(args.position) +
                      static_cast<size_t>(args.position_ids[token] + args.position_offset) * hidden;
  const T* type = args.token_type == nullptr
                      ? nullptr
                      : static_cast<const T*>(args.token_type) +
                            static_cast<size_t>(args.token_type_ids[token]) * hidden;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = ToFloat(word[i]) + ToFloat(position[i]);
    if (type != nullptr) v += ToFloat(type[i]);
    row[i] = v;
  }
  __syncthreads();
  LayerNormRow(row, hidden, static_cast<const T*>(args.gamma), static_cast<const T*>(args.beta),
               args.eps, static_cast<T*>(args.out) + static_cast<size_t>(token) * hidden, scratch);
}

// One warp per token with the row in registers (WarpLayerNorm): 16-byte gathers of the three
// table rows, for widths of a multiple of 8 up to 2048. The kernel above takes the rest.
constexpr int kTokensPerBlock = 4;

template <typename T, int kVecs>
__global__ void __launch_bounds__(kTokensPerBlock * 32)
    EmbeddingLayerNormWarpKernel(EmbeddingLayerNormArgs args) {
  const int token = blockIdx.x * kTokensPerBlock + (threadIdx.x >> 5);
  if (token >= args.tokens) return;
  const int hidden = args.hidden;
  auto row = [hidden](const void* table, int index) {
    return reinterpret_cast<const uint4*>(static_cast<const T*>(table) +
                                          static_cast<size_t>(index) * hidden);
  };
  kernels::WarpLayerNorm<T, kVecs>(
      row(args.word, args.input_ids[token]),
      row(args.position, args.position_ids[token] + args.position_offset),
      args.token_type != nullptr ? row(args.token_type, args.token_type_ids[token]) : nullptr,
      hidden, static_cast<const T*>(args.gamma), static_cast<const T*>(args.beta), args.eps,
      static_cast<T*>(args.out) + static_cast<size_t>(token) * hidden, nullptr);
}

template <typename T>
void Launch(const EmbeddingLayerNormArgs& args, cudaStream_t stream) {
  using kernels::Aligned16;
  const bool vectorizable = args.hidden % 8 == 0 && Aligned16(args.word) &&
                            Aligned16(args.position) &&
                            (args.token_type == nullptr || Aligned16(args.token_type)) &&
                            Aligned16(args.gamma) && Aligned16(args.beta) && Aligned16(args.out);
  const int blocks = (args.tokens + kTokensPerBlock - 1) / kTokensPerBlock;
  const bool warp = vectorizable && kernels::WithWarpLayerNormVecs(args.hidden, [&](auto vecs) {
                      EmbeddingLayerNormWarpKernel<T, decltype(vecs)::value>
                          <<<blocks, kTokensPerBlock * 32, 0, stream>>>(args);
                    });
  if (!warp) {
    const size_t smem = sizeof(float) * static_cast<size_t>(args.hidden);
    EmbeddingLayerNormKernel<T><<<args.tokens, kThreads, smem, stream>>>(args);
  }
}

}  // namespace

Status EmbeddingLayerNorm(const EmbeddingLayerNormArgs& args, cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(kernels::CheckLayerNormShape(args.tokens, args.hidden));
  if (args.tokens == 0) return Status::Ok();
  if (args.dtype == CudaDType::kF16) {
    Launch<__half>(args, stream);
  } else {
    Launch<__nv_bfloat16>(args, stream);
  }
  return LaunchStatus("EmbeddingLayerNormKernel");
}

}  // namespace sluice::cuda
