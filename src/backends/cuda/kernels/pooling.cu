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

// Mean and max pooling of rows of a multiple of 8 up to 2048 wide: each thread reads one
// 16-byte column slice of every `rows`-th token (rows = kThreads / (hidden / 8) of them in
// flight at once); the partial results meet in shared memory.
constexpr int kMaxVecHidden = 2048;
static_assert(kMaxVecHidden <= kThreads * 8, "one 16-byte slice per thread covers a row");

__device__ __forceinline__ float Combine(Pooling pooling, float acc, float v) {
  return pooling == Pooling::kMax ? fmaxf(acc, v) : acc + v;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) PoolVecKernel(PoolingArgs args) {
  __shared__ float partial[kThreads * 8];
  __shared__ float scratch[kThreads / 32];
  const int seq = blockIdx.x;
  const int begin = args.cu_seqlens[seq];
  const int end = args.cu_seqlens[seq + 1];
  const int hidden = args.hidden;
  float* out = args.out + static_cast<size_t>(seq) * hidden;
  if (end <= begin) {
    // A padding slot of a fixed-shape (graph) launch: defined output, no token read.
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[i] = 0.0f;
    return;
  }
  const int vecs = hidden / 8;
  const int rows = kThreads / vecs;
  const int r = threadIdx.x / vecs;
  const int c = threadIdx.x - r * vecs;
  const float init = args.pooling == Pooling::kMax ? -INFINITY : 0.0f;
  float acc[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) acc[e] = init;
  if (r < rows) {
    const auto* states = reinterpret_cast<const uint4*>(static_cast<const T*>(args.states));
#pragma unroll 4
    for (int t = begin + r; t < end; t += rows) {
      const kernels::Vec8<T> v{states[static_cast<size_t>(t) * vecs + c]};
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[e] = Combine(args.pooling, acc[e], v.Get(e));
    }
  }
  // rows x hidden partial results (at most kThreads * 8), then each output element folds its
  // column of them.
  if (r < rows) {
#pragma unroll
    for (int e = 0; e < 8; ++e) partial[r * hidden + 8 * c + e] = acc[e];
  }
  __syncthreads();
  const float n = static_cast<float>(end - begin);
  const float divide = args.pooling == Pooling::kMean          ? n
                       : args.pooling == Pooling::kMeanSqrtLen ? sqrtf(n)
                                                               : 1.0f;
  float sq = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = partial[i];
    for (int k = 1; k < rows; ++k) v = Combine(args.pooling, v, partial[k * hidden + i]);
    v /= divide;
    out[i] = v;
    sq += v * v;
  }
  if (args.normalize == nullptr || args.normalize[seq] == 0) return;  // uniform across the block
  const float inv = 1.0f / fmaxf(sqrtf(BlockSum(sq, scratch)), 1e-12f);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[i] *= inv;
}

template <typename T>
void Launch(const PoolingArgs& args, cudaStream_t stream) {
  const bool vectorizable =
      (args.pooling == Pooling::kMean || args.pooling == Pooling::kMeanSqrtLen ||
       args.pooling == Pooling::kMax) &&
      args.hidden % 8 == 0 && args.hidden <= kMaxVecHidden && kernels::Aligned16(args.states);
  if (vectorizable) {
    PoolVecKernel<T><<<args.num_sequences, kThreads, 0, stream>>>(args);
  } else {
    PoolKernel<T><<<args.num_sequences, kThreads, 0, stream>>>(args);
  }
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
    Launch<__half>(args, stream);
  } else {
    Launch<__nv_bfloat16>(args, stream);
  }
  return LaunchStatus("PoolKernel");
}

}  // namespace sluice::cuda
