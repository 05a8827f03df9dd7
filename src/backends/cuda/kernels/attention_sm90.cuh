// FusedAttentionSm90: FusedAttention for head size 64, and 32 with an even number of heads, on
// Hopper (compute capability 9.0):
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

// True for the head sizes and counts the kernel is compiled for: head size 64, or 32 with an
// even number of heads (a work item holds two).
bool FusedAttentionSm90Takes(int head_dim, int num_heads);

// InvalidArgument unless FusedAttentionSm90Takes and total_rows is set. REQUIRES:
// FusedAttentionSm90Runs(current device) and the checks FusedAttention makes.
Status FusedAttentionSm90(const AttentionArgs& args, cudaStream_t stream);

}  // namespace sluice::cuda
