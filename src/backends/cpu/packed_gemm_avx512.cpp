// Compiled with -mavx512f -mfma (src/backends/cpu/CMakeLists.txt). Nothing here may be an inline
// function or template shared with other translation units (standard library included): the
// linker could keep this file's AVX-512 copy of it for every caller, on any CPU.
#include "backends/cpu/packed_gemm_avx512.h"

#include <immintrin.h>

namespace sluice::cpu {
namespace {

constexpr size_t kWidth = kAvx512PanelWidth;
constexpr size_t kVectors = kWidth / 16;
// Rows of a register tile: 14 x 2 accumulators, the panel's two vectors and one broadcast of x
// use 31 of the 32 zmm registers. Measured against 8 x 48, 6 x 64 and 16 x 16 tiles: level at
// 512 rows and more, ahead at 16-128 (docs/cpu-backend.md).
constexpr size_t kMaxRows = 14;
// Rows of x per outer block: a block's rows are re-read for every panel, so they should stay in
// the L2 cache (kRowBlock x K floats: 168 KB at K = 384, 672 KB at K = 1536).
constexpr size_t kRowBlock = 8 * kMaxRows;
// How far ahead of its loads a tile prefetches its panel, in floats (4 KB). The first tile of a
// panel streams it from the last-level cache, and at few rows that stream is the bottleneck:
// worth ~20% at 16 rows, 10% at 128.
constexpr size_t kPrefetchAhead = 1024;

constexpr size_t Min(size_t a, size_t b) { return a < b ? a : b; }

// One register tile: kRows x kWidth outputs of one panel. Every output is a single accumulator
// that starts at zero and takes one FMA per k in increasing order, whatever kRows is, so a row's
// result is the same bits in every tile it can fall in. Lanes outside `masks` are not stored.
template <size_t kRows>
void Tile(const float* x, size_t ldx, const float* panel, size_t k, const __mmask16* masks,
          float* y, size_t ldy) {
  __m512 acc[kRows][kVectors];
#pragma GCC unroll 16
  for (size_t r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (size_t v = 0; v < kVectors; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  const float* b = panel;
#pragma GCC unroll 2
  for (size_t i = 0; i < k; ++i, b += kWidth) {
    __m512 bv[kVectors];
#pragma GCC unroll 4
    for (size_t v = 0; v < kVectors; ++v) {
      bv[v] = _mm512_load_ps(b + 16 * v);
      // Past the panel's end this touches the next panel or unmapped memory: prefetches do not
      // fault.
      _mm_prefetch(reinterpret_cast<const char*>(b + 16 * v + kPrefetchAhead), _MM_HINT_T0);
    }
#pragma GCC unroll 16
    for (size_t r = 0; r < kRows; ++r) {
      const __m512 a = _mm512_set1_ps(x[r * ldx + i]);
#pragma GCC unroll 4
      for (size_t v = 0; v < kVectors; ++v) acc[r][v] = _mm512_fmadd_ps(a, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (size_t r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (size_t v = 0; v < kVectors; ++v) {
      _mm512_mask_storeu_ps(y + r * ldy + 16 * v, masks[v], acc[r][v]);
    }
  }
}

using TileFn = void (*)(const float*, size_t, const float*, size_t, const __mmask16*, float*,
                        size_t);

template <size_t... kRows>
struct TileTable {
  static constexpr TileFn fns[] = {nullptr, &Tile<kRows>...};
};

// kTiles[r] computes a tile of r rows, 1 <= r <= kMaxRows.
using Tiles = TileTable<1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14>;
static_assert(sizeof(Tiles::fns) == (kMaxRows + 1) * sizeof(TileFn));
constexpr const TileFn* kTiles = Tiles::fns;

}  // namespace

void PackedGemmAvx512(const float* x, size_t ldx, size_t rows, const float* panels, size_t k,
                      size_t col0, size_t cols, float* y, size_t ldy) {
  const size_t first = col0 / kWidth;
  const size_t last = (col0 + cols + kWidth - 1) / kWidth;
  // Row blocks outside, panels inside: at few rows (one block) every panel is read from memory
  // once and serves all rows while it is in cache; at many rows a block of x stays in L2 while
  // the panels stream past it. Blocks are of even size; tiles within a block are full but the
  // last: a full tile streaming a panel from memory hides the stream behind its arithmetic (at
  // 16 rows, tiles of 14 + 2 run ~10% faster than 8 + 8). The split decides only which tile a row
  // falls in, never its arithmetic.
  const size_t num_blocks = (rows + kRowBlock - 1) / kRowBlock;
  for (size_t b = 0, r0 = 0; b < num_blocks; ++b) {
    const size_t block = rows / num_blocks + (b < rows % num_blocks ? 1 : 0);
    for (size_t p = first; p < last; ++p) {
      // The panel's columns in range; the rest of the tile is computed (over the zero padding or
      // columns of another caller's range) but not stored.
      const size_t c = p * kWidth - col0;
      const size_t valid = Min(kWidth, cols - c);
      __mmask16 masks[kVectors];
      for (size_t v = 0; v < kVectors; ++v) {
        const size_t lanes = valid > 16 * v ? Min(16, valid - 16 * v) : 0;
        masks[v] = static_cast<__mmask16>((1u << lanes) - 1u);
      }
      const float* panel = panels + p * k * kWidth;
      for (size_t r = r0; r < r0 + block; r += kMaxRows) {
        const size_t n = Min(kMaxRows, r0 + block - r);
        kTiles[n](x + r * ldx, ldx, panel, k, masks, y + r * ldy + c, ldy);
      }
    }
    r0 += block;
  }
}

}  // namespace sluice::cpu
