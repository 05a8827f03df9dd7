#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/attention.cuh"
#include "backends/cuda/kernels/attention_sm90.cuh"
#include "backends/cuda/kernels/device_util.cuh"
#include "backends/cuda/kernels/fragment_util.cuh"

namespace sluice::cuda {
namespace {

using kernels::AddPair;
using kernels::Exp2;
using kernels::FoldRowMax;
using kernels::LdMatrixX4;
using kernels::LdMatrixX4Trans;
using kernels::Pack;
using kernels::SharedAddress;
using kernels::ToFloat;

// One block: a query tile of 128 rows of one head. Each warp owns 16-row m-tiles of it for the
// whole pass (4 warps x 2 m-tiles for head sizes up to 64, 8 warps x 1 for 128), so the scores,
// probabilities and output accumulators never leave registers (mma.sync m16n8k16 fragments),
// and with two m-tiles every K/V fragment read from shared memory feeds two products. K/V tiles
// of 64 keys stream through two shared-memory buffers filled by cp.async, the next tile loading
// while the current one is multiplied. A 128-row tile also means each (sequence, head) reads
// its K/V once for sequences up to 128 tokens.
constexpr int kBlockM = kAttentionQueryTile;
constexpr int kBlockN = 64;

template <int D>
struct Shape {
  static constexpr int kWarps = D > 64 ? 8 : 4;
  static constexpr int kThreads = kWarps * 32;
  // The kernel waits on chains of dependent instructions, so more warps per multiprocessor
  // help where registers allow: for head size 32, three blocks (168 registers, a few bytes
  // spilled) run 9-15% faster than two (H100, MiniLM-L6); for 64 and 128 the cap spills into
  // the products and runs slower.
  static constexpr int kMinBlocks = D == 32 ? 3 : 1;
  static constexpr int kMTiles = kBlockM / (16 * kWarps);
  static_assert(kMTiles * 16 * kWarps == kBlockM, "the warps must cover the query tile");
};

// Rows are padded by 16 bytes so that the 8 row addresses of each ldmatrix fall in different
// banks, and stay 16-byte aligned for cp.async.
template <int D>
struct Layout {
  static constexpr int kLd = D + 8;  // 16-bit elements per row
  static constexpr int kKvTile = kBlockN * kLd;
  // Q tile, two K and two V tiles, then the Q and V biases of the head.
  static constexpr size_t kBytes = sizeof(uint16_t) * (kBlockM * kLd + 4 * kKvTile + 2 * D);
};

// 16 bytes global -> shared, bypassing L1; zero-filled when !valid (nothing is read then).
__device__ __forceinline__ void CpAsync16(void* dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SharedAddress(dst)),
               "l"(src), "r"(bytes));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// c += a * b for one 16x8 tile, float accumulators.
template <typename T>
__device__ __forceinline__ void Mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1);
template <>
__device__ __forceinline__ void Mma<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                            uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void Mma<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                   uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Starts copying `kRows` rows of one head (D elements each) into a padded tile, row r from row
// source(r) of `src`; rows whose source is negative become zeros so that no stale value can
// reach the products.
template <typename T, int D, int kRows, typename Source>
__device__ __forceinline__ void LoadRows(const T* src, size_t src_stride, Source source, T* dst) {
  constexpr int kVecs = D / 8;
#pragma unroll
  for (int i = threadIdx.x; i < kRows * kVecs; i += Shape<D>::kThreads) {
    const int r = i / kVecs;
    const int c = (i % kVecs) * 8;
    const int from = source(r);
    const bool in = from >= 0;
    CpAsync16(dst + r * Layout<D>::kLd + c, in ? src + from * src_stride + c : src, in);
  }
}

// Starts copying the first `valid` of `kRows` rows, the others zeros. (LoadRows with
// `r < valid ? r : -1` does the same, but ptxas then allocates the whole kernel differently, and
// 64-row tiles ran 3-4% slower: H100, BERT-base 256 x 64 attention 0.695 / 0.697 against 0.668 /
// 0.667 ms.)
template <typename T, int D, int kRows>
__device__ __forceinline__ void LoadTile(const T* src, size_t src_stride, int valid, T* dst) {
  constexpr int kVecs = D / 8;
#pragma unroll
  for (int i = threadIdx.x; i < kRows * kVecs; i += Shape<D>::kThreads) {
    const int r = i / kVecs;
    const int c = (i % kVecs) * 8;
    const bool in = r < valid;
    CpAsync16(dst + r * Layout<D>::kLd + c, in ? src + r * src_stride + c : src, in);
  }
}

// Rows a sequence of `len` tokens takes in a packed tile: its length rounded up to
// kAttentionPackAlign.
__host__ __device__ constexpr int PackedSlotRows(int len) {
  return (len + kAttentionPackAlign - 1) / kAttentionPackAlign * kAttentionPackAlign;
}

// A packed tile (kAttentionPackedBit): up to four whole sequences, each starting at a tile row
// that is a multiple of 16. Each sequence's keys then sit at the same offsets within the 16-key
// blocks as when it runs alone, so its products and sums, and hence its vectors, are the same
// bits whatever it is batched with.
struct PackedTile {
  static constexpr int kMax = kAttentionPackTokens / kAttentionPackAlign;
  int count = 0;
  int rows = 0;          // tile rows in use
  int first[kMax] = {};  // each sequence's first token, from the tile's first
  int len[kMax] = {};
  int slot[kMax] = {};  // each sequence's first tile row

  // `cu`: the cumulative lengths from the tile's first sequence on. (Every array is indexed by
  // constants only, so that the whole tile stays in registers.)
  __device__ __forceinline__ PackedTile(const int32_t* cu, int sequences) : count(sequences) {
    const int begin = cu[0];
#pragma unroll
    for (int j = 0; j < kMax; ++j) {
      if (j < count) {
        first[j] = cu[j] - begin;
        len[j] = cu[j + 1] - cu[j];
        slot[j] = rows;
        rows += PackedSlotRows(len[j]);
      }
    }
  }
  // The slot holding tile row `row` (< rows): its first row, length and first token.
  struct Place {
    int slot, len, first;
  };
  __device__ __forceinline__ Place At(int row) const {
    Place place{slot[0], len[0], first[0]};
#pragma unroll
    for (int k = 1; k < kMax; ++k) {
      if (k < count && row >= slot[k]) place = Place{slot[k], len[k], first[k]};
    }
    return place;
  }
  // The token (from the tile's first) at tile row `row`, or -1 for a padding row.
  __device__ __forceinline__ int TokenAt(int row) const {
    if (row >= rows) return -1;
    const Place place = At(row);
    const int offset = row - place.slot;
    return offset < place.len ? place.first + offset : -1;
  }
};

// The attention of one query tile, with kMT m-tiles per warp in use: a tile of at most 16 x
// kWarps rows runs with kMT = 1, so a short sequence does not pay for the rows it lacks.
// kPacked: the tile holds the sequences of `packed` (tokens from `begin` on), `len` is
// packed->rows; each row attends only to its own sequence's keys, and a warp issues the products
// of only the 16-key blocks its rows need.
template <typename T, int D, int kMT, bool kPacked = false>
__device__ __forceinline__ void AttendTile(const AttentionArgs& args, float scale_log2, int head,
                                           int begin, int len, int q0, unsigned char* smem,
                                           const PackedTile* packed = nullptr) {
  static_assert(!kPacked || kMT == 1, "a packed tile spans one m-tile per warp");
  using L = Layout<D>;
  constexpr int kWarps = Shape<D>::kWarps;
  constexpr int kRows = kMT * 16 * kWarps;
  T* q_tile = reinterpret_cast<T*>(smem);
  T* k_tiles = q_tile + kBlockM * L::kLd;
  T* v_tiles = k_tiles + 2 * L::kKvTile;

  const int hidden = args.num_heads * D;
  const size_t stride = 3 * static_cast<size_t>(hidden);
  const T* base = static_cast<const T*>(args.qkv) + static_cast<size_t>(begin) * stride + head * D;
  const T* k_src = base + hidden;
  const T* v_src = base + 2 * hidden;

  // Biases of the fused projection (optional): Q's is added to the query fragments; K's is left
  // out, since it adds the same q . b_k to every score of a row, which softmax cancels; V's is
  // added to the output, since each row of probabilities sums to one. They travel to shared
  // memory with the first tiles, so no global load latency sits before the first product or
  // after the last.
  const bool has_bias = args.qkv_bias != nullptr;
  T* bias_tile = v_tiles + 2 * L::kKvTile;  // [Q bias of the head | V bias of the head]

  if constexpr (kPacked) {
    auto token = [packed](int r) { return packed->TokenAt(r); };
    LoadRows<T, D, kRows>(base, stride, token, q_tile);
    LoadRows<T, D, kBlockN>(k_src, stride, token, k_tiles);
    LoadRows<T, D, kBlockN>(v_src, stride, token, v_tiles);
  } else {
    LoadTile<T, D, kRows>(base + static_cast<size_t>(q0) * stride, stride, len - q0, q_tile);
    LoadTile<T, D, kBlockN>(k_src, stride, len, k_tiles);
    LoadTile<T, D, kBlockN>(v_src, stride, len, v_tiles);
  }
  if (has_bias && threadIdx.x < 2 * D / 8) {
    const int part = threadIdx.x / (D / 8);  // 0: Q, 1: V
    const int c = (threadIdx.x % (D / 8)) * 8;
    const T* src = static_cast<const T*>(args.qkv_bias) + 2 * part * hidden + head * D + c;
    CpAsync16(bias_tile + part * D + c, src, true);
  }
  CpAsyncCommit();

  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int t = lane & 3;
  const T* q_bias = bias_tile;
  const T* v_bias = bias_tile + D;
  // M-tile i of this warp holds tile rows (i * kWarps + warp) * 16 + [0, 16): the first 16 *
  // kWarps rows go one m-tile to each warp, so short sequences still spread over all warps.
  // Rows past the sequence hold zero queries: finite scores, never stored.
  // Each thread holds two rows of an m-tile: lane / 4 and lane / 4 + 8.
  uint32_t q_frag[kMT][D / 16][4];
  float o[kMT][D / 8][4];
  float row_max[kMT][2];
  float row_sum[kMT][2];  // this thread's columns only; summed over the quad at the end
#pragma unroll
  for (int i = 0; i < kMT; ++i) {
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[i][n][0] = o[i][n][1] = o[i][n][2] = o[i][n][3] = 0.0f;
    row_max[i][0] = row_max[i][1] = -INFINITY;
    row_sum[i][0] = row_sum[i][1] = 0.0f;
  }

  // Packed tiles: the keys of this thread's two rows, [key_lo, key_hi) in tile rows, the token
  // each row is stored to (-1: a padding row), and the union of the keys over the warp's rows
  // (empty for a warp of padding rows).
  int key_lo[2] = {0, 0};
  int key_hi[2] = {len, len};
  int out_token[2] = {-1, -1};
  int warp_lo = 0;
  int warp_hi = len;
  if constexpr (kPacked) {
    int first = INT_MAX;
    int last = 0;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = warp * 16 + (lane >> 2) + 8 * r;
      if (row >= len) continue;
      const PackedTile::Place place = packed->At(row);
      key_lo[r] = place.slot;
      key_hi[r] = place.slot + place.len;
      if (row >= key_hi[r]) continue;
      out_token[r] = place.first + row - place.slot;
      first = min(first, key_lo[r]);
      last = max(last, key_hi[r]);
    }
    warp_lo = __reduce_min_sync(0xffffffffu, first);
    warp_hi = __reduce_max_sync(0xffffffffu, last);
  }
  // Whether the warp's rows need keys [k, k + 16).
  auto needs_keys = [&](int k) { return !kPacked || (k < warp_hi && k + 16 > warp_lo); };

  const int num_kv = (len + kBlockN - 1) / kBlockN;
  for (int it = 0; it < num_kv; ++it) {
    const int buf = it & 1;
    if (it + 1 < num_kv) {
      const int next = (it + 1) * kBlockN;
      LoadTile<T, D, kBlockN>(k_src + static_cast<size_t>(next) * stride, stride, len - next,
                              k_tiles + (buf ^ 1) * L::kKvTile);
      LoadTile<T, D, kBlockN>(v_src + static_cast<size_t>(next) * stride, stride, len - next,
                              v_tiles + (buf ^ 1) * L::kKvTile);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();
    if (it == 0) {
#pragma unroll
      for (int i = 0; i < kMT; ++i) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          LdMatrixX4(q_frag[i][kk], q_tile + ((i * kWarps + warp) * 16 + (lane & 15)) * L::kLd +
                                        kk * 16 + (lane >> 4) * 8);
          if (has_bias) {
            // Registers 0/1 hold columns kk * 16 + 2t (+1), registers 2/3 the same plus 8.
#pragma unroll
            for (int r = 0; r < 4; ++r) {
              const int d = kk * 16 + (r >> 1) * 8 + 2 * t;
              q_frag[i][kk][r] = AddPair<T>(q_frag[i][kk][r], q_bias[d], q_bias[d + 1]);
            }
          }
        }
      }
    }
    const T* kt = k_tiles + buf * L::kKvTile;
    const T* vt = v_tiles + buf * L::kKvTile;

    // S = Q K^T: K stored [key][d] is the column-major B operand as it stands.
    float s[kMT][kBlockN / 8][4];
#pragma unroll
    for (int i = 0; i < kMT; ++i) {
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j)
        s[i][j][0] = s[i][j][1] = s[i][j][2] = s[i][j][3] = 0.0f;
    }
    const int k0 = it * kBlockN;
#pragma unroll
    for (int nn = 0; nn < kBlockN / 16; ++nn) {
      if (!needs_keys(k0 + nn * 16)) continue;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t b[4];
        const int key = nn * 16 + (lane & 7) + ((lane >> 4) << 3);
        const int d = kk * 16 + ((lane >> 3) & 1) * 8;
        LdMatrixX4(b, kt + key * L::kLd + d);
#pragma unroll
        for (int i = 0; i < kMT; ++i) {
          Mma<T>(s[i][2 * nn], q_frag[i][kk], b[0], b[1]);
          Mma<T>(s[i][2 * nn + 1], q_frag[i][kk], b[2], b[3]);
        }
      }
    }
    if constexpr (kPacked) {
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = k0 + j * 8 + 2 * t + (e & 1);
          if (key < key_lo[e >> 1] || key >= key_hi[e >> 1]) s[0][j][e] = -INFINITY;
        }
      }
    } else if (k0 + kBlockN > len) {
#pragma unroll
      for (int i = 0; i < kMT; ++i) {
#pragma unroll
        for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if (k0 + j * 8 + 2 * t + (e & 1) >= len) s[i][j][e] = -INFINITY;
          }
        }
      }
    }

    // Online softmax in base 2 with the scale folded into one FMA per score; every tile holds
    // at least one valid key, so each row's max is finite.
#pragma unroll
    for (int i = 0; i < kMT; ++i) {
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
        tile_max[0] = fmaxf(tile_max[0], fmaxf(s[i][j][0], s[i][j][1]));
        tile_max[1] = fmaxf(tile_max[1], fmaxf(s[i][j][2], s[i][j][3]));
      }
      float alpha[2];
      float neg_max[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        alpha[r] = FoldRowMax(tile_max[r], scale_log2, row_max[i][r]);
        neg_max[r] = -row_max[i][r];
      }
      float tile_sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[i][j][e] = Exp2(fmaf(s[i][j][e], scale_log2, neg_max[e >> 1]));
          tile_sum[e >> 1] += s[i][j][e];
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) row_sum[i][r] = row_sum[i][r] * alpha[r] + tile_sum[r];
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o[i][n][0] *= alpha[0];
        o[i][n][1] *= alpha[0];
        o[i][n][2] *= alpha[1];
        o[i][n][3] *= alpha[1];
      }
    }

    // O += P V: the score accumulators of two adjacent key tiles are exactly an A fragment;
    // V stored [key][d] is row-major B, transposed on the way in by ldmatrix.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      if (!needs_keys(k0 + kk * 16)) continue;
      uint32_t a[kMT][4];
#pragma unroll
      for (int i = 0; i < kMT; ++i) {
        a[i][0] = Pack<T>(s[i][2 * kk][0], s[i][2 * kk][1]);
        a[i][1] = Pack<T>(s[i][2 * kk][2], s[i][2 * kk][3]);
        a[i][2] = Pack<T>(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
        a[i][3] = Pack<T>(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
      }
#pragma unroll
      for (int nn = 0; nn < D / 16; ++nn) {
        uint32_t b[4];
        const int key = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        const int d = nn * 16 + (lane >> 4) * 8;
        LdMatrixX4Trans(b, vt + key * L::kLd + d);
#pragma unroll
        for (int i = 0; i < kMT; ++i) {
          Mma<T>(o[i][2 * nn], a[i], b[0], b[1]);
          Mma<T>(o[i][2 * nn + 1], a[i], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with this buffer before it is refilled
  }

  T* out = static_cast<T*>(args.out) + head * D + 2 * t;
#pragma unroll
  for (int i = 0; i < kMT; ++i) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = row_sum[i][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      int row = q0 + (i * kWarps + warp) * 16 + (lane >> 2) + 8 * r;
      if constexpr (kPacked) {
        if (out_token[r] < 0) continue;
        row = out_token[r];
      } else if (row >= len) {
        continue;
      }
      const float inv = 1.0f / sum;
      T* dst = out + static_cast<size_t>(begin + row) * hidden;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        float b0 = 0.0f, b1 = 0.0f;
        if (has_bias) {
          b0 = ToFloat(v_bias[n * 8 + 2 * t]);
          b1 = ToFloat(v_bias[n * 8 + 2 * t + 1]);
        }
        *reinterpret_cast<uint32_t*>(dst + n * 8) =
            Pack<T>(fmaf(o[i][n][2 * r], inv, b0), fmaf(o[i][n][2 * r + 1], inv, b1));
      }
    }
  }
}

// The work item's sequence, first query row and kind, from the work list or the grid.
struct TileItem {
  int seq = 0;
  int q0 = 0;
  bool half = false;
  int packed = 0;  // sequences in a packed tile, 0 otherwise
};

__device__ __forceinline__ TileItem ListedTile(const int32_t* tiles, int tile) {
  TileItem item;
  item.seq = tiles[2 * tile];
  int32_t first = tiles[2 * tile + 1];
  if ((first & kAttentionPackedBit) != 0) {
    item.packed = first & (kAttentionPackedBit - 1);
    first = 0;
  }
  item.half = (first & kAttentionHalfTileBit) != 0;
  item.q0 = first & ~kAttentionHalfTileBit;
  return item;
}

template <typename T, int D>
__global__ void __launch_bounds__(Shape<D>::kThreads, Shape<D>::kMinBlocks)
    FusedAttentionKernel(AttentionArgs args, float scale_log2) {
  extern __shared__ __align__(128) unsigned char smem[];
  TileItem item;
  if (args.tiles != nullptr) {
    if (static_cast<int>(blockIdx.x) >= *args.num_tiles) return;
    item = ListedTile(args.tiles, blockIdx.x);
  } else {
    item.seq = blockIdx.z;
    item.q0 = blockIdx.x * kBlockM;
  }
  const int head = blockIdx.y;
  const int begin = args.cu_seqlens[item.seq];
  if (item.packed > 0) {
    const PackedTile packed(args.cu_seqlens + item.seq, item.packed);
    AttendTile<T, D, 1, true>(args, scale_log2, head, begin, packed.rows, 0, smem, &packed);
    return;
  }
  const int len = args.cu_seqlens[item.seq + 1] - begin;
  if (item.q0 >= len) return;
  constexpr int kMT = Shape<D>::kMTiles;
  // One m-tile per warp covers 16 * kWarps = 64 rows (head sizes up to 64): a half tile, or
  // the end of a sequence.
  if (kMT > 1 && (item.half || len - item.q0 <= 16 * Shape<D>::kWarps)) {
    AttendTile<T, D, 1>(args, scale_log2, head, begin, len, item.q0, smem);
  } else {
    AttendTile<T, D, kMT>(args, scale_log2, head, begin, len, item.q0, smem);
  }
}

// Work lists of tiles of at most 64 rows (AttentionArgs::short_tiles, head sizes up to 64):
// compiled for one m-tile per warp only, which needs half the registers, so twice the blocks
// share a multiprocessor; a grid of one wave of blocks takes the (tile, head) items in turn,
// so no block is launched only to find the list ended.
constexpr int kShortMinBlocks = 4;

template <typename T, int D>
__global__ void __launch_bounds__(Shape<D>::kThreads, kShortMinBlocks)
    ShortAttentionKernel(AttentionArgs args, float scale_log2) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int items = *args.num_tiles * args.num_heads;
  for (int i = blockIdx.x; i < items; i += gridDim.x) {
    const TileItem item = ListedTile(args.tiles, i / args.num_heads);
    const int head = i % args.num_heads;
    const int begin = args.cu_seqlens[item.seq];
    if (item.packed > 0) {
      const PackedTile packed(args.cu_seqlens + item.seq, item.packed);
      AttendTile<T, D, 1, true>(args, scale_log2, head, begin, packed.rows, 0, smem, &packed);
    } else {
      const int len = args.cu_seqlens[item.seq + 1] - begin;
      if (item.q0 >= len) continue;
      AttendTile<T, D, 1>(args, scale_log2, head, begin, len, item.q0, smem);
    }
    __syncthreads();  // the next item refills the shared tiles this one read last
  }
}

template <typename T, int D>
Status Launch(const AttentionArgs& args, cudaStream_t stream) {
  constexpr size_t kSmem = Layout<D>::kBytes;
  const float scale_log2 = args.scale * static_cast<float>(M_LOG2E);
  if constexpr (D <= 64) {
    if (args.short_tiles) {
      auto* kernel = &ShortAttentionKernel<T, D>;
      SLUICE_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
          kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem)));
      int device = 0;
      int sms = 0;
      int per_sm = 0;
      SLUICE_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
      SLUICE_CUDA_RETURN_IF_ERROR(
          cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
      SLUICE_CUDA_RETURN_IF_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
          &per_sm, kernel, Shape<D>::kThreads, kSmem));
      const long items = static_cast<long>(args.max_tiles) * args.num_heads;
      const int blocks = static_cast<int>(std::min<long>(items, std::max(per_sm, 1) * sms));
      kernel<<<blocks, Shape<D>::kThreads, kSmem, stream>>>(args, scale_log2);
      return LaunchStatus("ShortAttentionKernel");
    }
  }
  auto* kernel = &FusedAttentionKernel<T, D>;
  if (kSmem > 48 * 1024) {
    SLUICE_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
        kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem)));
  }
  const dim3 grid = args.tiles != nullptr ? dim3(args.max_tiles, args.num_heads, 1)
                                          : dim3((args.max_seqlen + kBlockM - 1) / kBlockM,
                                                 args.num_heads, args.num_sequences);
  kernel<<<grid, Shape<D>::kThreads, kSmem, stream>>>(args, scale_log2);
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

namespace {

// Calls emit(sequence, first-row field) for each tile of the work list, in order.
template <typename Emit>
void ForEachAttentionTile(const int32_t* cu_seqlens, int num_sequences, AttentionTiling tiling,
                          Emit&& emit) {
  const bool pack = tiling == AttentionTiling::kPacked;
  const bool half = tiling == AttentionTiling::kHalf || pack;
  const int rows = half ? kBlockM / 2 : kBlockM;
  const int32_t flag = half ? kAttentionHalfTileBit : 0;
  auto length = [&](int s) { return cu_seqlens[s + 1] - cu_seqlens[s]; };
  for (int s = 0; s < num_sequences;) {
    const int len = length(s);
    if (pack && len > 0 && len <= kAttentionPackTokens) {
      // The following non-empty sequences while their slots fit in one packed tile.
      int used = PackedSlotRows(len);
      int end = s + 1;
      while (end < num_sequences && length(end) > 0 &&
             used + PackedSlotRows(length(end)) <= kAttentionPackTokens) {
        used += PackedSlotRows(length(end));
        ++end;
      }
      emit(s, end - s > 1 ? kAttentionPackedBit | (end - s) : 0);
      s = end;
      continue;
    }
    for (int q0 = 0; q0 < len; q0 += rows) emit(s, q0 | flag);
    ++s;
  }
}

}  // namespace

int AppendAttentionTiles(const int32_t* cu_seqlens, int num_sequences, int32_t* tiles,
                         AttentionTiling tiling) {
  int n = 0;
  ForEachAttentionTile(cu_seqlens, num_sequences, tiling, [&](int s, int32_t first) {
    tiles[2 * n] = s;
    tiles[2 * n + 1] = first;
    ++n;
  });
  return n;
}

int CountAttentionTiles(const int32_t* cu_seqlens, int num_sequences, AttentionTiling tiling) {
  int n = 0;
  ForEachAttentionTile(cu_seqlens, num_sequences, tiling, [&](int, int32_t) { ++n; });
  return n;
}

int MaxAttentionTiles(int tokens, int sequences, bool short_tiles) {
  // ceil(len / tile) <= len / tile + 1 for each sequence (a packed tile holds at least one), and
  // every tile holds a token.
  const int rows = short_tiles ? kBlockM / 2 : kBlockM;
  const long bound = static_cast<long>(tokens) / rows + sequences;
  return static_cast<int>(bound < tokens ? bound : tokens);
}

bool FusedAttentionUsesHopperKernel(const AttentionArgs& args) {
#ifdef SLUICE_HAVE_SM90A
  int device = 0;
  return args.hopper && !args.short_tiles &&
         FusedAttentionSm90Takes(args.head_dim, args.num_heads) && args.total_rows > 0 &&
         cudaGetDevice(&device) == cudaSuccess && FusedAttentionSm90Runs(device);
#else
  static_cast<void>(args);
  return false;
#endif
}

bool FusedAttentionSupportsHeadDim(int head_dim) {
  return head_dim == 32 || head_dim == 64 || head_dim == 128;
}

Status FusedAttention(const AttentionArgs& args, cudaStream_t stream) {
  if (args.num_sequences < 0 || args.max_seqlen < 0 || args.num_heads <= 0 || args.max_tiles < 0 ||
      args.total_rows < 0) {
    return InvalidArgument("attention over " + std::to_string(args.num_sequences) +
                           " sequences of at most " + std::to_string(args.max_seqlen) +
                           " tokens, " + std::to_string(args.num_heads) + " heads");
  }
  if (!FusedAttentionSupportsHeadDim(args.head_dim)) {
    return InvalidArgument("attention head size " + std::to_string(args.head_dim) +
                           " is not compiled (32, 64, 128)");
  }
  if ((args.tiles == nullptr) != (args.num_tiles == nullptr)) {
    return InvalidArgument("attention work list without its length (or the reverse)");
  }
  if (args.qkv_bias != nullptr && reinterpret_cast<uintptr_t>(args.qkv_bias) % 16 != 0) {
    return InvalidArgument("attention's QKV bias must be 16-byte aligned");
  }
  if (args.num_heads > 65535 || (args.tiles == nullptr && args.num_sequences > 65535) ||
      int64_t{args.max_tiles} * args.num_heads > INT_MAX) {
    return InvalidArgument(
        "attention grid too large: at most 65535 sequences and heads, 2^31 - 1 tiles x heads");
  }
  if (args.short_tiles && (args.tiles == nullptr || args.head_dim > 64)) {
    return InvalidArgument("short attention tiles need a work list and a head size up to 64");
  }
  if (args.tiles != nullptr ? args.max_tiles == 0
                            : (args.num_sequences == 0 || args.max_seqlen == 0)) {
    return Status::Ok();
  }
  if (FusedAttentionUsesHopperKernel(args)) return FusedAttentionSm90(args, stream);
  return args.dtype == CudaDType::kF16 ? Dispatch<__half>(args, stream)
                                       : Dispatch<__nv_bfloat16>(args, stream);
}

}  // namespace sluice::cuda
