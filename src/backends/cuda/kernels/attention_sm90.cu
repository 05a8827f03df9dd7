// Hopper attention for head sizes 64 and 32, warp-specialized: one warpgroup loads Q and 128-key
// K/V tiles by TMA into a ring of shared-memory slots behind mbarriers; two warpgroups of 64 query
// rows each multiply on wgmma (S = Q K^T with Q from registers, O += P V with P from the
// registers S was computed in). For head size 64 they issue the next tile's S before this tile's
// softmax, so the tensor cores multiply while the other units exponentiate; for head size 32 a
// work item holds two heads, whose softmax chains hide each other's latency instead. No
// block-wide barrier inside the loop. Compiled for sm_90a only (wgmma and setmaxnreg are not part
// of the portable sm_90 target).
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/kernels/attention_sm90.cuh"
#include "backends/cuda/kernels/device_util.cuh"
#include "backends/cuda/kernels/fragment_util.cuh"

namespace sluice::cuda {
namespace {

using kernels::AddPair;
using kernels::Exp2;
using kernels::FoldRowMax;
using kernels::LdMatrixX4;
using kernels::Pack;
using kernels::SharedAddress;
using kernels::ToFloat;

constexpr int kBlockM = kAttentionQueryTile;  // two consumer warpgroups of 64 rows
constexpr int kBlockN = 128;                  // keys per K/V tile
constexpr int kStages = 4;                    // K/V ring slots
constexpr int kThreads = 384;                 // producer + two consumer warpgroups
constexpr int kQSlots = 2;                    // the next item's Q loads while this one's is in use

// Shapes of a head size D (64 or 32): one swizzled row per token, 128 bytes (128-byte swizzle:
// 16-byte chunk c of row r at chunk c ^ (r % 8)) or 64 bytes (64-byte swizzle: chunk c of row r
// at c ^ (r / 2 % 4)). Every head of a work item has its own Q, K and V tiles.
template <int D>
struct Geometry {
  static_assert(D == 64 || D == 32, "head size 64 or 32");
  // Heads per work item. Head size 32 with one head per item (the next tile's S in flight
  // instead) against two, H100, same run, MiniLM-L6 attention: 256 x 512 3.42 / 3.37 ms against
  // 2.91 / 2.92, 256 x 256 1.14 / 1.14 against 0.99 / 1.00, 256 x 128 0.45 / 0.43 against
  // 0.41 / 0.42.
  static constexpr int kHeads = D == 32 ? 2 : 1;
  static constexpr int kRowBytes = D * 2;
  static constexpr uint32_t kQBytes = kBlockM * kRowBytes;   // one head's
  static constexpr uint32_t kKvBytes = kBlockN * kRowBytes;  // one head's K or V
  // Per Q slot, what the consumers need of its work item: where it is (ItemInfo), then the
  // heads' Q biases and V biases.
  static constexpr uint32_t kInfoBytes = 32 + 2 * kHeads * D * 2;
  // The Q slots, the K slots, the V slots, the barriers (each Q slot's full and empty; each K/V
  // slot's full and empty), the infos; 1 KB spare to align the base for the swizzle.
  static constexpr size_t kSmemBytes = kQSlots * (kHeads * kQBytes + kInfoBytes) +
                                       2 * kStages * kHeads * kKvBytes +
                                       8 * (2 * kQSlots + 2 * kStages) + 1024;
  // wgmma descriptor: swizzle mode (1: 128-byte, 2: 64-byte) and bytes between groups of 8 rows.
  static constexpr uint64_t kSwizzleMode = D == 64 ? 1 : 2;
  // Items of up to this many key tiles take turns (below). Measured on an H100: head size 64,
  // attention 12% faster at 128 keys per sequence, 5% at 256, 1.5-2.6% slower at 512; head
  // size 32 level at 128 and 9-14% slower at 256 and 512.
  static constexpr int kTurnMaxTiles = D == 64 ? 2 : 0;
  static constexpr uint32_t kGroupBytes = 8 * kRowBytes;
  __device__ static uint32_t Chunk(int row, int chunk) {
    return static_cast<uint32_t>(D == 64 ? chunk ^ (row & 7) : chunk ^ ((row >> 1) & 3));
  }
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

__device__ __forceinline__ void BarrierInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void BarrierExpect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void BarrierArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void BarrierWait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  }
}
// A box of the QKV matrix (columns c0.., rows c1..) into shared memory, completing on `bar`.
__device__ __forceinline__ void TmaLoad(uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                        uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, "
      "{%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

// Shared-memory matrix descriptor of head size D's swizzled tiles: `leading` bytes between
// swizzle atoms along the contiguous dimension (unused within one atom).
template <int D>
__device__ __forceinline__ uint64_t Descriptor(uint32_t address, uint32_t leading) {
  using G = Geometry<D>;
  return static_cast<uint64_t>((address & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>(leading >> 4) << 16) |
         (static_cast<uint64_t>(G::kGroupBytes >> 4) << 32) | (G::kSwizzleMode << 62);
}

__device__ __forceinline__ void WgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}

template <int N>
__device__ __forceinline__ void FenceRegisters(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// s (64 x 128 per warpgroup, float) = or += A B, A in registers (each warp's 16 rows), B
// K-major in shared memory.
template <typename T>
__device__ __forceinline__ void WgmmaScores(float (&d)[64], const uint32_t (&a)[4], uint64_t b,
                                            int accumulate);
// o (64 x D per warpgroup) += A B, A in registers (each warp's 16 rows), B MN-major.
template <typename T>
__device__ __forceinline__ void WgmmaOutput(float (&d)[32], const uint32_t (&a)[4], uint64_t b);
template <typename T>
__device__ __forceinline__ void WgmmaOutput(float (&d)[16], const uint32_t (&a)[4], uint64_t b);

#define SLUICE_D64                                                                              \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
  "%56, %57, %58, %59, %60, %61, %62, %63}"
#define SLUICE_D64_OPERANDS                                                                       \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),  \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),  \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),  \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),  \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define SLUICE_D32                                                                              \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define SLUICE_D32_OPERANDS                                                                       \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define SLUICE_D16 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}"
#define SLUICE_D16_OPERANDS                                                                       \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15])

#define SLUICE_DEFINE_WGMMA(T, PTX_TYPE)                                                           \
  template <>                                                                                      \
  __device__ __forceinline__ void WgmmaScores<T>(float(&d)[64], const uint32_t(&a)[4], uint64_t b, \
                                                 int accumulate) {                                 \
    asm volatile(                                                                                  \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                               \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX_TYPE "." PTX_TYPE " " SLUICE_D64        \
        ", {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"                                            \
        : SLUICE_D64_OPERANDS                                                                      \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));                    \
  }                                                                                                \
  template <>                                                                                      \
  __device__ __forceinline__ void WgmmaOutput<T>(float(&d)[32], const uint32_t(&a)[4],             \
                                                 uint64_t b) {                                     \
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE               \
                 " " SLUICE_D32 ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"                       \
                 : SLUICE_D32_OPERANDS                                                             \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                            \
  }                                                                                                \
  template <>                                                                                      \
  __device__ __forceinline__ void WgmmaOutput<T>(float(&d)[16], const uint32_t(&a)[4],             \
                                                 uint64_t b) {                                     \
    asm volatile("wgmma.mma_async.sync.aligned.m64n32k16.f32." PTX_TYPE "." PTX_TYPE               \
                 " " SLUICE_D16 ", {%16, %17, %18, %19}, %20, 1, 1, 1, 1;\n"                       \
                 : SLUICE_D16_OPERANDS                                                             \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));                            \
  }

SLUICE_DEFINE_WGMMA(__half, "f16")
SLUICE_DEFINE_WGMMA(__nv_bfloat16, "bf16")

// s = Q K^T for one key tile, Q from registers (asynchronous; committed as one group).
template <typename T, int D>
__device__ __forceinline__ void IssueScores(float (&s)[64], const uint32_t (&q)[D / 16][4],
                                            uint32_t k_tile) {
  WgmmaFence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    WgmmaScores<T>(s, q[kk], Descriptor<D>(k_tile + 32 * kk, 16), kk > 0 ? 1 : 0);
  }
  WgmmaCommit();
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// One (query tile, head group) pair of the work: item w is query tile w / groups (of the work
// list, or of the sequence-major grid of tiles) for heads (w % groups) * heads_per_item onwards.
// False for a tile past its sequence's end.
struct WorkItem {
  int head = 0;
  int begin = 0;
  int len = 0;
  int q0 = 0;
  int q_end = 0;
};

__device__ __forceinline__ bool DecodeItem(const AttentionArgs& args, int w, int qtiles,
                                           int heads_per_item, WorkItem* item) {
  const int groups = args.num_heads / heads_per_item;
  const int tile = w / groups;
  item->head = (w - tile * groups) * heads_per_item;
  int seq = 0;
  int q0 = 0;
  bool half = false;
  if (args.tiles != nullptr) {
    seq = args.tiles[2 * tile];
    q0 = args.tiles[2 * tile + 1];
    half = (q0 & kAttentionHalfTileBit) != 0;
    q0 &= ~kAttentionHalfTileBit;
  } else {
    seq = tile / qtiles;
    q0 = (tile - seq * qtiles) * kBlockM;
  }
  item->begin = args.cu_seqlens[seq];
  item->len = args.cu_seqlens[seq + 1] - item->begin;
  item->q0 = q0;
  item->q_end = min(item->len, q0 + (half ? kBlockM / 2 : kBlockM));
  return q0 < item->len;
}

// A work item as the consumers read it from shared memory; valid == 0 ends the block's work.
struct ItemInfo {
  int begin;
  int len;
  int q0;
  int q_end;
  int head;  // the first of the item's heads
  int valid;
};

// Persistent: each block takes work items gridDim.x apart; the producer runs ahead into the
// next item (its Q once both consumers are done with the current one, its K/V as ring slots
// come free), so loads overlap the products and the output stores.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 1)
    AttentionSm90Kernel(const __grid_constant__ CUtensorMap qkv_map, AttentionArgs args,
                        float scale_log2) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using G = Geometry<D>;
  constexpr int H = G::kHeads;
  constexpr int kRowBytes = G::kRowBytes;
  constexpr uint32_t kQBytes = G::kQBytes;
  constexpr uint32_t kKvBytes = G::kKvBytes;
  constexpr uint32_t kInfoBytes = G::kInfoBytes;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const int qtiles = (args.max_seqlen + kBlockM - 1) / kBlockM;
  const int total = (args.tiles != nullptr ? *args.num_tiles : args.num_sequences * qtiles) *
                    (args.num_heads / H);
  const int hidden = args.num_heads * D;

  const uint32_t raw = SharedAddress(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  const uint32_t q_slots = base;                             // [slot][head of the item]
  const uint32_t k_slots = q_slots + kQSlots * H * kQBytes;  // [ring slot][head of the item]
  const uint32_t v_slots = k_slots + kStages * H * kKvBytes;
  const uint32_t q_full = v_slots + kStages * H * kKvBytes;  // kQSlots barriers each
  const uint32_t q_empty = q_full + 8 * kQSlots;
  const uint32_t full = q_empty + 8 * kQSlots;  // kStages barriers: slot loaded
  const uint32_t empty = full + 8 * kStages;    // kStages barriers: slot free again
  unsigned char* infos = smem_raw + (empty + 8 * kStages - raw);  // kQSlots x kInfoBytes

  if (threadIdx.x == 0) {
    for (int s = 0; s < kQSlots; ++s) {
      BarrierInit(q_full + 8 * s, 2);     // the Q load, and the item's info written
      BarrierInit(q_empty + 8 * s, 256);  // every consumer thread, its Q fragments loaded
    }
    for (int s = 0; s < kStages; ++s) {
      BarrierInit(full + 8 * s, 1);
      BarrierInit(empty + 8 * s, 2);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  const int warpgroup = threadIdx.x >> 7;
  if (warpgroup == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    if (threadIdx.x == 0) {
      int items = 0;
      int loaded = 0;  // K/V tiles issued so far, over all items
      for (int w = blockIdx.x; w < total; w += gridDim.x) {
        WorkItem item;
        if (!DecodeItem(args, w, qtiles, H, &item)) continue;
        const int qs = items % kQSlots;
        if (items >= kQSlots) BarrierWait(q_empty + 8 * qs, ((items / kQSlots) + 1) & 1);
        BarrierExpect(q_full + 8 * qs, H * kQBytes);
        for (int h = 0; h < H; ++h) {
          TmaLoad(q_slots + (qs * H + h) * kQBytes, &qkv_map, (item.head + h) * D,
                  item.begin + item.q0, q_full + 8 * qs);
        }
        const int num_kv = (item.len + kBlockN - 1) / kBlockN;
        for (int j = 0; j < num_kv; ++j, ++loaded) {
          const int s = loaded % kStages;
          if (loaded >= kStages) BarrierWait(empty + 8 * s, ((loaded / kStages) + 1) & 1);
          BarrierExpect(full + 8 * s, 2 * H * kKvBytes);
          for (int h = 0; h < H; ++h) {
            TmaLoad(k_slots + (s * H + h) * kKvBytes, &qkv_map, hidden + (item.head + h) * D,
                    item.begin + j * kBlockN, full + 8 * s);
            TmaLoad(v_slots + (s * H + h) * kKvBytes, &qkv_map, 2 * hidden + (item.head + h) * D,
                    item.begin + j * kBlockN, full + 8 * s);
          }
        }
        ++items;
      }
      // The end of the block's work, for the consumers: this slot's info says so.
      const int qs = items % kQSlots;
      if (items >= kQSlots) BarrierWait(q_empty + 8 * qs, ((items / kQSlots) + 1) & 1);
      BarrierArrive(q_full + 8 * qs);
    } else if (threadIdx.x >> 5 == 1) {
      // The info warp: each item's coordinates and biases into its Q slot's info, ahead of the
      // consumers, so that no global load latency sits at the start of an item.
      const int lane = threadIdx.x & 31;
      const auto* bias = static_cast<const uint32_t*>(args.qkv_bias);  // pairs of 16-bit values
      int items = 0;
      for (int w = blockIdx.x;; w += gridDim.x) {
        WorkItem item;
        const bool done = w >= total;
        if (!done && !DecodeItem(args, w, qtiles, H, &item)) continue;
        const int qs = items % kQSlots;
        if (items >= kQSlots) BarrierWait(q_empty + 8 * qs, ((items / kQSlots) + 1) & 1);
        unsigned char* slot = infos + qs * kInfoBytes;
        // The item's heads are adjacent: their Q biases are H * D / 2 pairs, then V's. Each lane
        // loads one pair of each; lane 0 writes the whole info and arrives, so that the arrival
        // covers every write. (Lanes writing their own pairs before lane 0's arrival, ordered by
        // a __syncwarp, are reported as read-after-write hazards by compute-sanitizer's
        // racecheck; every lane arriving was measured 3% slower at 512 tokens.)
        static_assert(H * D / 2 <= 32, "one bias pair per lane");
        const bool biased = !done && bias != nullptr;
        uint32_t q_pair = 0;
        uint32_t v_pair = 0;
        if (biased && lane < H * D / 2) {
          q_pair = bias[(item.head * D) / 2 + lane];
          v_pair = bias[(2 * hidden + item.head * D) / 2 + lane];
        }
        auto* pairs = reinterpret_cast<uint32_t*>(slot + 32);
        if (biased) {
#pragma unroll
          for (int j = 0; j < H * D / 2; ++j) {
            const uint32_t q = __shfl_sync(0xffffffffu, q_pair, j);
            const uint32_t v = __shfl_sync(0xffffffffu, v_pair, j);
            if (lane == 0) {
              pairs[j] = q;
              pairs[H * D / 2 + j] = v;
            }
          }
        }
        if (lane == 0) {
          ItemInfo info{};
          if (!done) info = {item.begin, item.len, item.q0, item.q_end, item.head, 1};
          *reinterpret_cast<ItemInfo*>(slot) = info;
          BarrierArrive(q_full + 8 * qs);
        }
        if (done) break;
        ++items;
      }
    }
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");

  const int wg = warpgroup - 1;  // rows wg * 64 .. + 63 of the tile
  const int warp = (threadIdx.x >> 5) & 3;
  const int lane = threadIdx.x & 31;
  const int t = lane & 3;
  const int r0 = wg * 64 + warp * 16 + (lane >> 2);  // this thread's rows: r0 and r0 + 8
  const bool has_bias = args.qkv_bias != nullptr;
  const bool leader = (threadIdx.x & 127) == 0;
  // Turns (named barriers 1 and 2): for items of at most G::kTurnMaxTiles key tiles the
  // warpgroups issue their products alternately, so that one's softmax runs while the other's
  // products keep the tensor cores busy, instead of both doing the same thing at once. A
  // warpgroup waits for its turn on its barrier, issues, then hands the turn over on the
  // other's; warpgroup 0 goes first. Both take the same items, so they agree on `turns`.
  const int my_turn = 1 + wg;
  const int other_turn = 2 - wg;
  bool turns = false;
  auto take_turn = [&] {
    if (turns) asm volatile("bar.sync %0, 256;\n" ::"r"(my_turn) : "memory");
  };
  auto pass_turn = [&] {
    if (turns) asm volatile("bar.arrive %0, 256;\n" ::"r"(other_turn) : "memory");
  };
  if (G::kTurnMaxTiles > 0 && wg == 1) asm volatile("bar.arrive 1, 256;\n" ::: "memory");

  int used = 0;  // K/V tiles consumed so far, over all items
  for (int items = 0;; ++items) {
    const int qs = items % kQSlots;
    BarrierWait(q_full + 8 * qs, (items / kQSlots) & 1);
    const unsigned char* slot = infos + qs * kInfoBytes;
    const ItemInfo item = *reinterpret_cast<const ItemInfo*>(slot);
    if (item.valid == 0) {
      // Warpgroup 1's last hand-over (or the first, if no item took turns).
      if (G::kTurnMaxTiles > 0 && wg == 0) asm volatile("bar.sync 1, 256;\n" ::: "memory");
      break;
    }
    const int len = item.len;
    const int num_kv = (len + kBlockN - 1) / kBlockN;
    turns = num_kv <= G::kTurnMaxTiles;
    const auto* bias_pairs = reinterpret_cast<const uint32_t*>(slot + 32);

    // This warp's 16 query rows of each head as wgmma A fragments (the m16k16 layout of
    // mma.sync), with the Q bias added; K's adds the same q . b_k to every score of a row, which
    // softmax cancels. The V bias this thread adds to its output columns. Then the slot goes back.
    uint32_t q[H][D / 16][4];
    uint32_t v_bias[H][D / 8];
    {
      const int row = wg * 64 + warp * 16 + (lane & 15);
#pragma unroll
      for (int h = 0; h < H; ++h) {
        const uint32_t q_row = q_slots + (qs * H + h) * kQBytes + row * kRowBytes;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          const int chunk = 2 * kk + (lane >> 4);
          LdMatrixX4(q[h][kk], q_row + (G::Chunk(row, chunk) << 4));
          if (has_bias) {
            // Registers 0/1 hold columns 16 kk + 2t (+1), registers 2/3 the same plus 8.
#pragma unroll
            for (int r = 0; r < 4; ++r) {
              const uint32_t b = bias_pairs[(h * D + kk * 16 + (r >> 1) * 8 + 2 * t) / 2];
              const T* pair = reinterpret_cast<const T*>(&b);
              q[h][kk][r] = AddPair<T>(q[h][kk][r], pair[0], pair[1]);
            }
          }
        }
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
          v_bias[h][n] = has_bias ? bias_pairs[(H * D + h * D + n * 8 + 2 * t) / 2] : 0u;
        }
      }
    }
    BarrierArrive(q_empty + 8 * qs);

    float o[H][D / 2];
    float s[H][64];
    float row_max[H][2];
    float row_sum[H][2];  // this thread's columns only; summed over the quad later
#pragma unroll
    for (int h = 0; h < H; ++h) {
      row_max[h][0] = row_max[h][1] = -INFINITY;
      row_sum[h][0] = row_sum[h][1] = 0.0f;
#pragma unroll
      for (int i = 0; i < D / 2; ++i) o[h][i] = 0.0f;
    }
    // Key tile j's scores of every head: online softmax in base 2 (the scale folded into one FMA
    // per score), the output so far rescaled, then P, the A fragments of O += P V (the score
    // accumulators of two adjacent 8-key blocks are one fragment). The heads' steps alternate,
    // so that one head's instructions fill the other's latencies.
    auto softmax = [&](int j, uint32_t(&p)[H][kBlockN / 16][4]) {
      const int k0 = j * kBlockN;
      if (k0 + kBlockN > len) {
#pragma unroll
        for (int n = 0; n < kBlockN / 8; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if (k0 + n * 8 + 2 * t + (e & 1) >= len) {
#pragma unroll
              for (int h = 0; h < H; ++h) s[h][4 * n + e] = -INFINITY;
            }
          }
        }
      }
      float tile_max[H][2];
#pragma unroll
      for (int h = 0; h < H; ++h) tile_max[h][0] = tile_max[h][1] = -INFINITY;
#pragma unroll
      for (int n = 0; n < kBlockN / 8; ++n) {
#pragma unroll
        for (int h = 0; h < H; ++h) {
          tile_max[h][0] = fmaxf(tile_max[h][0], fmaxf(s[h][4 * n], s[h][4 * n + 1]));
          tile_max[h][1] = fmaxf(tile_max[h][1], fmaxf(s[h][4 * n + 2], s[h][4 * n + 3]));
        }
      }
      float alpha[H][2];
      float neg_max[H][2];
      float tile_sum[H][2];
#pragma unroll
      for (int h = 0; h < H; ++h) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          alpha[h][r] = FoldRowMax(tile_max[h][r], scale_log2, row_max[h][r]);
          neg_max[h][r] = -row_max[h][r];
          tile_sum[h][r] = 0.0f;
        }
      }
#pragma unroll
      for (int i = 0; i < 64; ++i) {
#pragma unroll
        for (int h = 0; h < H; ++h) {
          s[h][i] = Exp2(fmaf(s[h][i], scale_log2, neg_max[h][(i >> 1) & 1]));
          tile_sum[h][(i >> 1) & 1] += s[h][i];
        }
      }
#pragma unroll
      for (int h = 0; h < H; ++h) {
#pragma unroll
        for (int r = 0; r < 2; ++r) row_sum[h][r] = row_sum[h][r] * alpha[h][r] + tile_sum[h][r];
#pragma unroll
        for (int i = 0; i < D / 2; ++i) o[h][i] *= alpha[h][(i >> 1) & 1];
#pragma unroll
        for (int kk = 0; kk < kBlockN / 16; ++kk) {
          p[h][kk][0] = Pack<T>(s[h][8 * kk], s[h][8 * kk + 1]);
          p[h][kk][1] = Pack<T>(s[h][8 * kk + 2], s[h][8 * kk + 3]);
          p[h][kk][2] = Pack<T>(s[h][8 * kk + 4], s[h][8 * kk + 5]);
          p[h][kk][3] = Pack<T>(s[h][8 * kk + 6], s[h][8 * kk + 7]);
        }
      }
    };
    // O += P V for every head, V of ring slot `slot` ([key][d], the MN-major B operand, 16 keys
    // per k16 step).
    auto issue_output = [&](int slot, const uint32_t(&p)[H][kBlockN / 16][4]) {
#pragma unroll
      for (int h = 0; h < H; ++h) FenceRegisters(o[h]);
      WgmmaFence();
#pragma unroll
      for (int h = 0; h < H; ++h) {
        const uint32_t vt = v_slots + (slot * H + h) * kKvBytes;
#pragma unroll
        for (int kk = 0; kk < kBlockN / 16; ++kk) {
          WgmmaOutput<T>(o[h], p[h][kk], Descriptor<D>(vt + kk * 16 * kRowBytes, kKvBytes));
        }
      }
      WgmmaCommit();
    };

    if constexpr (H == 1) {
      // The next tile's S is issued before this tile's softmax.
      {
        const int s0 = used % kStages;
        take_turn();
        BarrierWait(full + 8 * s0, (used / kStages) & 1);
        IssueScores<T, D>(s[0], q[0], k_slots + s0 * kKvBytes);
        pass_turn();
        WgmmaWait();
        FenceRegisters(s[0]);
      }
      for (int j = 0; j < num_kv; ++j, ++used) {
        const int slot = used % kStages;
        const bool more = j + 1 < num_kv;
        float next[64];
        if (more) {
          const int ns = (used + 1) % kStages;
          take_turn();
          BarrierWait(full + 8 * ns, ((used + 1) / kStages) & 1);
          IssueScores<T, D>(next, q[0], k_slots + ns * kKvBytes);
          pass_turn();
        }
        uint32_t p[H][kBlockN / 16][4];
        softmax(j, p);
        take_turn();
        issue_output(slot, p);
        pass_turn();
        WgmmaWait();  // this tile's P V and the next tile's S
        FenceRegisters(o[0]);
        if (leader) BarrierArrive(empty + 8 * slot);
        if (more) {
          FenceRegisters(next);
#pragma unroll
          for (int i = 0; i < 64; ++i) s[0][i] = next[i];
        }
      }
    } else {
      // Every head's S of a tile, then every head's P V; the heads' softmax chains interleave.
      for (int j = 0; j < num_kv; ++j, ++used) {
        const int slot = used % kStages;
        BarrierWait(full + 8 * slot, (used / kStages) & 1);
#pragma unroll
        for (int h = 0; h < H; ++h) {
          IssueScores<T, D>(s[h], q[h], k_slots + (slot * H + h) * kKvBytes);
        }
        WgmmaWait();
#pragma unroll
        for (int h = 0; h < H; ++h) FenceRegisters(s[h]);
        uint32_t p[H][kBlockN / 16][4];
        softmax(j, p);
        issue_output(slot, p);
        WgmmaWait();
#pragma unroll
        for (int h = 0; h < H; ++h) FenceRegisters(o[h]);
        if (leader) BarrierArrive(empty + 8 * slot);
      }
    }

#pragma unroll
    for (int h = 0; h < H; ++h) {
      T* out = static_cast<T*>(args.out) + (item.head + h) * D + 2 * t;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float sum = row_sum[h][r];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const int row = item.q0 + r0 + 8 * r;
        if (row >= item.q_end) continue;
        const float inv = 1.0f / sum;
        T* dst = out + static_cast<size_t>(item.begin + row) * hidden;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
          float b0 = 0.0f, b1 = 0.0f;
          if (has_bias) {
            const T* pair = reinterpret_cast<const T*>(&v_bias[h][n]);
            b0 = ToFloat(pair[0]);
            b1 = ToFloat(pair[1]);
          }
          *reinterpret_cast<uint32_t*>(dst + n * 8) =
              Pack<T>(fmaf(o[h][4 * n + 2 * r], inv, b0), fmaf(o[h][4 * n + 2 * r + 1], inv, b1));
        }
      }
    }
  }
#else
  // Never launched where sm_90a code is missing: FusedAttentionSm90Runs() says so first.
  static_cast<void>(qkv_map);
  static_cast<void>(args);
  static_cast<void>(scale_log2);
#endif
}

// cuTensorMapEncodeTiled from the driver the runtime loaded (no link against libcuda).
PFN_cuTensorMapEncodeTiled_v12000 EncodeTiled() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      static_cast<void>(cudaGetLastError());
      p = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

template <typename T, int D>
Status Launch(const AttentionArgs& args, cudaStream_t stream) {
  // The QKV matrix, [rows, 3 * hidden], read in boxes of 128 rows x D columns (one head's Q,
  // K or V for a tile), swizzled as Geometry<D> says; rows past the matrix read as zeros.
  auto encode = EncodeTiled();
  if (encode == nullptr) return Unavailable("the CUDA driver has no cuTensorMapEncodeTiled");
  const int64_t cols = 3 * static_cast<int64_t>(args.num_heads) * D;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols),
                              static_cast<cuuint64_t>(args.total_rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {D, kBlockN};
  const cuuint32_t element_strides[2] = {1, 1};
  CUtensorMap map;
  const CUresult r = encode(&map,
                            args.dtype == CudaDType::kF16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                          : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
                            2, const_cast<void*>(args.qkv), dims, strides, box, element_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE,
                            D == 64 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    return Internal("cuTensorMapEncodeTiled failed with " + std::to_string(static_cast<int>(r)));
  }
  constexpr size_t kSmemBytes = Geometry<D>::kSmemBytes;
  auto* kernel = &AttentionSm90Kernel<T, D>;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
      kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemBytes)));
  const int64_t qtiles = (args.max_seqlen + kBlockM - 1) / kBlockM;
  const int64_t items = (args.tiles != nullptr ? args.max_tiles : args.num_sequences * qtiles) *
                        (args.num_heads / Geometry<D>::kHeads);
  int device = 0;
  int sms = 0;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  SLUICE_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(items, sms)));
  const float scale_log2 = args.scale * static_cast<float>(M_LOG2E);
  kernel<<<grid, kThreads, kSmemBytes, stream>>>(map, args, scale_log2);
  return LaunchStatus("AttentionSm90Kernel");
}

}  // namespace

bool FusedAttentionSm90Takes(int head_dim, int num_heads) {
  return head_dim == 64 || (head_dim == 32 && num_heads % 2 == 0);
}

bool FusedAttentionSm90Runs(int device) {
  int major = 0;
  int minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return false;
  }
  return major == 9 && minor == 0;
}

Status FusedAttentionSm90(const AttentionArgs& args, cudaStream_t stream) {
  if (!FusedAttentionSm90Takes(args.head_dim, args.num_heads)) {
    return InvalidArgument(
        "the Hopper attention kernel takes head size 64, or 32 with an even "
        "number of heads, not " +
        std::to_string(args.num_heads) + " heads of " + std::to_string(args.head_dim));
  }
  if (args.total_rows <= 0 || reinterpret_cast<uintptr_t>(args.qkv) % 16 != 0) {
    return InvalidArgument(
        "the Hopper attention kernel needs the QKV row count and a 16-byte "
        "aligned QKV matrix");
  }
  if (args.head_dim == 64) {
    return args.dtype == CudaDType::kF16 ? Launch<__half, 64>(args, stream)
                                         : Launch<__nv_bfloat16, 64>(args, stream);
  }
  return args.dtype == CudaDType::kF16 ? Launch<__half, 32>(args, stream)
                                       : Launch<__nv_bfloat16, 32>(args, stream);
}

}  // namespace sluice::cuda
