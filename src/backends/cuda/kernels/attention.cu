#include <mma.h>

#include <cmath>
#include <string>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/attention.cuh"
#include "backends/cuda/kernels/device_util.cuh"

namespace sluice::cuda {
namespace {

using kernels::FromFloat;
namespace wmma = nvcuda::wmma;

constexpr int kBlockM = 64;  // query rows per block: 4 warps x 16
constexpr int kBlockN = 64;  // keys per K/V tile
constexpr int kWarps = kBlockM / 16;
constexpr int kThreads = kWarps * 32;

// Shared-memory layout for one block. Rows are padded so that consecutive rows start in
// different banks; every fragment pointer stays 32-byte aligned as WMMA requires.
template <int D>
struct Layout {
  static constexpr int kLdh = D + 8;        // 16-bit elements per Q/K/V row
  static constexpr int kLds = kBlockN + 4;  // floats per score row
  static constexpr int kLdp = kBlockN + 8;  // 16-bit elements per probability row
  static constexpr int kLdo = D + 4;        // floats per output-accumulator row
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + sizeof(uint16_t) * kBlockM * kLdh;
  static constexpr size_t kV = kK + sizeof(uint16_t) * kBlockN * kLdh;
  static constexpr size_t kS = kV + sizeof(uint16_t) * kBlockN * kLdh;
  static constexpr size_t kP = kS + sizeof(float) * kBlockM * kLds;
  static constexpr size_t kO = kP + sizeof(uint16_t) * kBlockM * kLdp;
  static constexpr size_t kMax = kO + sizeof(float) * kBlockM * kLdo;
  static constexpr size_t kSum = kMax + sizeof(float) * kBlockM;
  static constexpr size_t kBytes = kSum + sizeof(float) * kBlockM;
};

// Copies `rows` rows of one head (D elements each, 16 bytes at a time) into a padded tile;
// rows past `valid` are zero so that no stale value can reach the products.
template <typename T, int D>
__device__ __forceinline__ void LoadTile(const T* src, size_t src_stride, int valid, T* dst) {
  constexpr int kVecs = D / 8;
  for (int i = threadIdx.x; i < kBlockN * kVecs; i += kThreads) {
    const int r = i / kVecs;
    const int c = (i % kVecs) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < valid) v = *reinterpret_cast<const uint4*>(src + r * src_stride + c);
    *reinterpret_cast<uint4*>(dst + r * Layout<D>::kLdh + c) = v;
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
    FusedAttentionKernel(AttentionArgs args, float scale_log2) {
  using L = Layout<D>;
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_tile = reinterpret_cast<T*>(smem + L::kQ);
  T* k_tile = reinterpret_cast<T*>(smem + L::kK);
  T* v_tile = reinterpret_cast<T*>(smem + L::kV);
  float* scores = reinterpret_cast<float*>(smem + L::kS);
  T* probs = reinterpret_cast<T*>(smem + L::kP);
  float* acc = reinterpret_cast<float*>(smem + L::kO);
  float* row_max = reinterpret_cast<float*>(smem + L::kMax);
  float* row_sum = reinterpret_cast<float*>(smem + L::kSum);

  const int seq = blockIdx.z;
  const int head = blockIdx.y;
  const int q0 = blockIdx.x * kBlockM;
  const int begin = args.cu_seqlens[seq];
  const int len = args.cu_seqlens[seq + 1] - begin;
  if (q0 >= len) return;  // the grid is sized for the longest sequence

  const int hidden = args.num_heads * D;
  const size_t stride = 3 * static_cast<size_t>(hidden);
  const T* qkv = static_cast<const T*>(args.qkv) + static_cast<size_t>(begin) * stride;
  const T* q_src = qkv + head * D;
  const T* k_src = qkv + hidden + head * D;
  const T* v_src = qkv + 2 * hidden + head * D;

  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  // Softmax and output work: two lanes per query row, each owning half of its columns.
  const int row = warp * 16 + (lane >> 1);
  const int half = lane & 1;

  LoadTile<T, D>(q_src + static_cast<size_t>(q0) * stride, stride, len - q0, q_tile);
  for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) acc[row * L::kLdo + d] = 0.0f;
  if (half == 0) {
    row_max[row] = -INFINITY;
    row_sum[row] = 0.0f;
  }

  for (int k0 = 0; k0 < len; k0 += kBlockN) {
    __syncthreads();  // every warp is done with the previous K/V tile
    LoadTile<T, D>(k_src + static_cast<size_t>(k0) * stride, stride, len - k0, k_tile);
    LoadTile<T, D>(v_src + static_cast<size_t>(k0) * stride, stride, len - k0, v_tile);
    __syncthreads();

    // S = Q K^T for this warp's 16 rows: K row-major is K^T column-major.
    float* s_warp = scores + warp * 16 * L::kLds;
    for (int n = 0; n < kBlockN / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s_frag;
      wmma::fill_fragment(s_frag, 0.0f);
#pragma unroll
      for (int k = 0; k < D / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> q_frag;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> k_frag;
        wmma::load_matrix_sync(q_frag, q_tile + warp * 16 * L::kLdh + k * 16, L::kLdh);
        wmma::load_matrix_sync(k_frag, k_tile + n * 16 * L::kLdh + k * 16, L::kLdh);
        wmma::mma_sync(s_frag, q_frag, k_frag, s_frag);
      }
      wmma::store_matrix_sync(s_warp + n * 16, s_frag, L::kLds, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax in base 2: rescale what was accumulated so far by 2^(m_old - m_new).
    const float* s_row = scores + row * L::kLds + half * (kBlockN / 2);
    float s[kBlockN / 2];
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < kBlockN / 2; ++j) {
      const bool valid = k0 + half * (kBlockN / 2) + j < len;
      s[j] = valid ? s_row[j] * scale_log2 : -INFINITY;
      tile_max = fmaxf(tile_max, s[j]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float m_old = row_max[row];
    const float l_old = row_sum[row];
    const float m_new = fmaxf(m_old, tile_max);  // finite: each tile has a valid key
    const float alpha = exp2f(m_old - m_new);
    T* p_row = probs + row * L::kLdp + half * (kBlockN / 2);
    float tile_sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kBlockN / 2; ++j) {
      const float p = exp2f(s[j] - m_new);
      tile_sum += p;
      p_row[j] = FromFloat<T>(p);
    }
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
    float* o_row = acc + row * L::kLdo;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) o_row[d] *= alpha;
    __syncwarp();  // both lanes of the row have read the old max and sum
    if (half == 0) {
      row_max[row] = m_new;
      row_sum[row] = l_old * alpha + tile_sum;
    }
    __syncwarp();

    // O += P V.
    float* o_warp = acc + warp * 16 * L::kLdo;
    const T* p_warp = probs + warp * 16 * L::kLdp;
    for (int n = 0; n < D / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o_frag;
      wmma::load_matrix_sync(o_frag, o_warp + n * 16, L::kLdo, wmma::mem_row_major);
#pragma unroll
      for (int k = 0; k < kBlockN / 16; ++k) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> p_frag;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> v_frag;
        wmma::load_matrix_sync(p_frag, p_warp + k * 16, L::kLdp);
        wmma::load_matrix_sync(v_frag, v_tile + k * 16 * L::kLdh + n * 16, L::kLdh);
        wmma::mma_sync(o_frag, p_frag, v_frag, o_frag);
      }
      wmma::store_matrix_sync(o_warp + n * 16, o_frag, L::kLdo, wmma::mem_row_major);
    }
    __syncwarp();
  }

  if (q0 + row < len) {
    const float inv = 1.0f / row_sum[row];
    const float* o_row = acc + row * L::kLdo;
    T* dst = static_cast<T*>(args.out) + static_cast<size_t>(begin + q0 + row) * hidden + head * D;
    for (int d = half * (D / 2); d < (half + 1) * (D / 2); ++d) {
      dst[d] = FromFloat<T>(o_row[d] * inv);
    }
  }
}

template <typename T, int D>
Status Launch(const AttentionArgs& args, cudaStream_t stream) {
  constexpr size_t kSmem = Layout<D>::kBytes;
  auto* kernel = &FusedAttentionKernel<T, D>;
  if (kSmem > 48 * 1024) {
    SLUICE_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem)));
  }
  const dim3 grid((args.max_seqlen + kBlockM - 1) / kBlockM, args.num_heads, args.num_sequences);
  const float scale_log2 = args.scale * static_cast<float>(M_LOG2E);
  kernel<<<grid, kThreads, kSmem, stream>>>(args, scale_log2);
  return LaunchStatus("FusedAttentionKernel");
}

template <typename T>
Status Dispatch(const AttentionArgs& args, cudaStream_t stream) {
  switch (args.head_dim) {
    case 32:
      return Launch<T, 32>(args, stream);
    case 64:
      return Launch<T, 64>(args, stream);
    case 128:
      return Launch<T, 128>(args, stream);
    default:
      return InvalidArgument("attention head size " + std::to_string(args.head_dim) +
                             " is not compiled (32, 64, 128)");
  }
}

}  // namespace

bool FusedAttentionSupportsHeadDim(int head_dim) {
  return head_dim == 32 || head_dim == 64 || head_dim == 128;
}

Status FusedAttention(const AttentionArgs& args, cudaStream_t stream) {
  if (args.num_sequences < 0 || args.max_seqlen < 0 || args.num_heads <= 0) {
    return InvalidArgument("attention over " + std::to_string(args.num_sequences) +
                           " sequences of at most " + std::to_string(args.max_seqlen) +
                           " tokens, " + std::to_string(args.num_heads) + " heads");
  }
  if (!FusedAttentionSupportsHeadDim(args.head_dim)) {
    return InvalidArgument("attention head size " + std::to_string(args.head_dim) +
                           " is not compiled (32, 64, 128)");
  }
  if (args.num_sequences == 0 || args.max_seqlen == 0) return Status::Ok();
  if (args.num_sequences > 65535 || args.num_heads > 65535) {
    return InvalidArgument("attention grid too large: at most 65535 sequences and heads");
  }
  return args.dtype == CudaDType::kF16 ? Dispatch<__half>(args, stream)
                                       : Dispatch<__nv_bfloat16>(args, stream);
}

}  // namespace sluice::cuda
