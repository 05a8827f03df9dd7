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
  const T* residual = static_cast<const T*>(args.residual) + offset;
  const T* bias = static_cast<const T*>(args.bias);
  for (int i = threadIdx.x; i < args.hidden; i += blockDim.x) {
    float v = ToFloat(x[i]) + ToFloat(residual[i]);
    if (bias != nullptr) v += ToFloat(bias[i]);
    row[i] = v;
  }
  // Every read of the row is done before any write, so out may alias residual.
  __syncthreads();
  LayerNormRow(row, args.hidden, static_cast<const T*>(args.gamma),
               static_cast<const T*>(args.beta), args.eps, static_cast<T*>(args.out) + offset,
               scratch);
}

}  // namespace

Status AddLayerNorm(const AddLayerNormArgs& args, cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(kernels::CheckLayerNormShape(args.rows, args.hidden));
  if (args.rows == 0) return Status::Ok();
  const size_t smem = sizeof(float) * static_cast<size_t>(args.hidden);
  if (args.dtype == CudaDType::kF16) {
    AddLayerNormKernel<__half><<<args.rows, kThreads, smem, stream>>>(args);
  } else {
    AddLayerNormKernel<__nv_bfloat16><<<args.rows, kThreads, smem, stream>>>(args);
  }
  return LaunchStatus("AddLayerNormKernel");
}

}  // namespace sluice::cuda
