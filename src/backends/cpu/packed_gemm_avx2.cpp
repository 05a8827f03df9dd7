// Compiled with -mavx2 -mfma (src/backends/cpu/CMakeLists.txt). As in packed_gemm_avx512.cpp,
// nothing here may be an inline function or template shared with other translation units.
#include "backends/cpu/packed_gemm_avx2.h"

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/packed_gemm_avx512.h"

namespace sluice::cpu {
namespace {

constexpr size_t kPanel = kAvx512PanelWidth;  // floats per k in a packed panel
// A tile covers half a panel: 16 columns, two ymm accumulators per row. With 6 rows, 12
// accumulators, the two panel vectors and one broadcast of x fill 15 of the 16 ymm registers.
constexpr size_t kHalf = 16;
constexpr size_t kMaxRows = 6;
// Rows of x per outer block, kept in L2 while the panels stream past (as the AVX-512 kernels).
constexpr size_t kRowBlock = 16 * kMaxRows;
constexpr size_t kPrefetchAhead = 1024;

constexpr size_t Min(size_t a, size_t b) { return a < b ? a : b; }

// kRows x 16 outputs at columns [half * 16, half * 16 + 16) of one panel. Every output is one
// accumulator from zero with one FMA per k in increasing order, whatever kRows is, so a row's
// result is the same bits in every tile it can fall in. Lanes outside `masks` are not stored.
template <size_t kRows>
void Tile(const float* x, size_t ldx, const float* panel, size_t half, size_t k,
          const __m256i* masks, float* y, size_t ldy) {
  __m256 acc[kRows][2];
#pragma GCC unroll 8
  for (size_t r = 0; r < kRows; ++r) {
    acc[r][0] = _mm256_setzero_ps();
    acc[r][1] = _mm256_setzero_ps();
  }
  const float* b = panel + half * kHalf;
#pragma GCC unroll 2
  for (size_t i = 0; i < k; ++i, b += kPanel) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    // Prefetches past the panel's end do not fault.
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchAhead), _MM_HINT_T0);
#pragma GCC unroll 8
    for (size_t r = 0; r < kRows; ++r) {
      const __m256 a = _mm256_broadcast_ss(x + r * ldx + i);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (size_t r = 0; r < kRows; ++r) {
    _mm256_maskstore_ps(y + r * ldy, masks[0], acc[r][0]);
    _mm256_maskstore_ps(y + r * ldy + 8, masks[1], acc[r][1]);
  }
}

using TileFn = void (*)(const float*, size_t, const float*, size_t, size_t, const __m256i*, float*,
                        size_t);

template <size_t... kRows>
struct TileTable {
  static constexpr TileFn fns[] = {nullptr, &Tile<kRows>...};
};

// kTiles[r] computes a tile of r rows, 1 <= r <= kMaxRows.
using Tiles = TileTable<1, 2, 3, 4, 5, 6>;
static_assert(sizeof(Tiles::fns) == (kMaxRows + 1) * sizeof(TileFn));
constexpr const TileFn* kTiles = Tiles::fns;

// All-ones in the first `lanes` of 8 lanes (maskstore writes a lane when its sign bit is set).
__m256i LaneMask(size_t lanes) {
  alignas(32) int32_t m[8];
  for (size_t i = 0; i < 8; ++i) m[i] = i < lanes ? -1 : 0;
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

}  // namespace

void PackedGemmAvx2(const float* x, size_t ldx, size_t rows, const float* panels, size_t k,
                    size_t col0, size_t cols, float* y, size_t ldy) {
  const size_t first = col0 / kPanel;
  const size_t last = (col0 + cols + kPanel - 1) / kPanel;
  const size_t num_blocks = (rows + kRowBlock - 1) / kRowBlock;
  for (size_t blk = 0, r0 = 0; blk < num_blocks; ++blk) {
    const size_t block = rows / num_blocks + (blk < rows % num_blocks ? 1 : 0);
    for (size_t p = first; p < last; ++p) {
      const float* panel = panels + p * k * kPanel;
      for (size_t half = 0; half < 2; ++half) {
        // Columns of this half panel inside the caller's range.
        const size_t c = p * kPanel + half * kHalf - col0;
        if (c >= cols) break;
        const size_t valid = Min(kHalf, cols - c);
        const __m256i masks[2] = {LaneMask(Min(8, valid)), LaneMask(valid > 8 ? valid - 8 : 0)};
        for (size_t r = r0; r < r0 + block; r += kMaxRows) {
          const size_t n = Min(kMaxRows, r0 + block - r);
          kTiles[n](x + r * ldx, ldx, panel, half, k, masks, y + r * ldy + c, ldy);
        }
      }
    }
    r0 += block;
  }
}

}  // namespace sluice::cpu
