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

}  // namespace

Status EmbeddingLayerNorm(const EmbeddingLayerNormArgs& args, cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(kernels::CheckLayerNormShape(args.tokens, args.hidden));
  if (args.tokens == 0) return Status::Ok();
  const size_t smem = sizeof(float) * static_cast<size_t>(args.hidden);
  if (args.dtype == CudaDType::kF16) {
    EmbeddingLayerNormKernel<__half><<<args.tokens, kThreads, smem, stream>>>(args);
  } else {
    EmbeddingLayerNormKernel<__nv_bfloat16><<<args.tokens, kThreads, smem, stream>>>(args);
  }
  return LaunchStatus("EmbeddingLayerNormKernel");
}

}  // namespace sluice::cuda
