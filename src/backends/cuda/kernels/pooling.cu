#include <string>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/device_util.cuh"
#include "backends/cuda/kernels/pooling.cuh"

namespace sluice::cuda {
namespace {

using kernels::BlockSum;
using kernels::ToFloat;

constexpr int kThreads = 256;

// Threads stride over the hidden dimension, so each token's row is read coalesced.
template <typename T>
__global__ void __launch_bounds__(kThreads) PoolKernel(PoolingArgs args) {
  __shared__ float scratch[kThreads / 32];
  const int seq = blockIdx.x;
  const int begin = args.cu_seqlens[seq];
  const int end = args.cu_seqlens[seq + 1];
  const int hidden = args.hidden;
  const T* states = static_cast<const T*>(args.states);
  float* out = args.out + static_cast<size_t>(seq) * hidden;
  const bool normalize = args.normalize != nullptr && args.normalize[seq] != 0;
  if (end <= begin) {
    // A padding slot of a fixed-shape (graph) launch: defined output, no token read.
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[i] = 0.0f;
    return;
  }

  float sq = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = 0.0f;
    switch (args.pooling) {
      case Pooling::kCls:
        v = ToFloat(states[static_cast<size_t>(begin) * hidden + i]);
        break;
      case Pooling::kLastToken:
        v = ToFloat(states[static_cast<size_t>(end - 1) * hidden + i]);
        break;
      case Pooling::kMax:
        v = -INFINITY;
        for (int t = begin; t < end; ++t) {
          v = fmaxf(v, ToFloat(states[static_cast<size_t>(t) * hidden + i]));
        }
        break;
      case Pooling::kMean:
      case Pooling::kMeanSqrtLen: {
        for (int t = begin; t < end; ++t) v += ToFloat(states[static_cast<size_t>(t) * hidden + i]);
        const float n = static_cast<float>(end - begin);
        v /= args.pooling == Pooling::kMean ? n : sqrtf(n);
        break;
      }
    }
    out[i] = v;
    sq += v * v;
  }
  if (!normalize) return;  // uniform across the block: no thread is left in BlockSum
  // Same epsilon as torch.nn.functional.normalize, so a zero vector stays zero.
  const float inv = 1.0f / fmaxf(sqrtf(BlockSum(sq, scratch)), 1e-12f);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[i] *= inv;
}

}  // namespace

Status PoolAndNormalize(const PoolingArgs& args, cudaStream_t stream) {
  if (args.num_sequences < 0 || args.hidden <= 0) {
    return InvalidArgument("pooling " + std::to_string(args.num_sequences) +
                           " sequences of width " + std::to_string(args.hidden));
  }
  switch (args.pooling) {
    case Pooling::kCls:
    case Pooling::kMean:
    case Pooling::kMax:
    case Pooling::kMeanSqrtLen:
    case Pooling::kLastToken:
      break;
    default:
      return InvalidArgument("unknown pooling mode");
  }
  if (args.num_sequences == 0) return Status::Ok();
  if (args.dtype == CudaDType::kF16) {
    PoolKernel<__half><<<args.num_sequences, kThreads, 0, stream>>>(args);
  } else {
    PoolKernel<__nv_bfloat16><<<args.num_sequences, kThreads, 0, stream>>>(args);
  }
  return LaunchStatus("PoolKernel");
}

}  // namespace sluice::cuda
