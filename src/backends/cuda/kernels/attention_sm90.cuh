// FusedAttentionSm90: FusedAttention for head sizes 64 and 32 on Hopper (compute capability 9.0):
// warp-specialized (a TMA producer warpgroup, two consumer warpgroups on wgmma) and persistent.
// Same arguments and results as FusedAttention, which calls it where it runs; built only when
// the build targets sm_90 (SLUICE_HAVE_SM90A).
#pragma once

#include <cuda_runtime_api.h>

#include "backends/cuda/kernels/attention.cuh"
#include "common/status.h"

namespace sluice::cuda {

// True when `device` is a compute capability 9.0 GPU, which runs the sm_90a code.
bool FusedAttentionSm90Runs(int device);

// InvalidArgument unless head_dim is 64 or 32 and total_rows is set. REQUIRES:
// FusedAttentionSm90Runs(current device) and the checks FusedAttention makes.
Status FusedAttentionSm90(const AttentionArgs& args, cudaStream_t stream);

}  // namespace sluice::cuda
