#include "backends/cpu/packed_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/thread_pool.h"

namespace sluice::cpu {
namespace {

constexpr size_t kPanel = PackedMatrix::kPanelWidth;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

PackedMatrix PackOrDie(const std::vector<float>& w, size_t n, size_t k) {
  StatusOr<PackedMatrix> packed = PackedMatrix::Pack(w.data(), n, k);
  EXPECT_TRUE(packed.ok()) << packed.status().ToString();
  return std::move(packed).value();
}

bool SameBits(const float* a, const float* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

const char* IsaName(PackedGemmIsa isa) { return isa == PackedGemmIsa::kAvx512 ? "avx512" : "avx2"; }

// Every test runs once per kernel set (AVX-512, AVX2), skipped where the CPU lacks it.
class PackedGemmBase {
 protected:
  explicit PackedGemmBase(PackedGemmIsa isa) : isa_(isa) {}
  bool Supported() const { return PackedGemmIsaSupported(isa_); }
  void Multiply(const float* x, size_t ldx, size_t rows, const PackedMatrix& w, size_t col0,
                size_t cols, float* y, size_t ldy) const {
    PackedGemm(x, ldx, rows, w, col0, cols, y, ldy, isa_);
  }
  // y = x W^T over all of [m, n], y row-major with stride n.
  std::vector<float> Gemm(const std::vector<float>& x, size_t m, const PackedMatrix& w) const {
    std::vector<float> y(m * w.n(), std::numeric_limits<float>::quiet_NaN());
    Multiply(x.data(), w.k(), m, w, 0, w.n(), y.data(), w.n());
    return y;
  }
  PackedGemmIsa isa_;
};

class PackedGemmTest : public PackedGemmBase, public ::testing::TestWithParam<PackedGemmIsa> {
 protected:
  PackedGemmTest() : PackedGemmBase(GetParam()) {}
  void SetUp() override {
    if (!Supported()) GTEST_SKIP() << "this CPU lacks " << IsaName(isa_);
  }
};

struct Shape {
  size_t m, n, k;
};

std::string ShapeName(const Shape& s) {
  return "m" + std::to_string(s.m) + "_n" + std::to_string(s.n) + "_k" + std::to_string(s.k);
}

using ShapeAndIsa = std::tuple<Shape, PackedGemmIsa>;

class PackedGemmShapeTest : public PackedGemmBase, public ::testing::TestWithParam<ShapeAndIsa> {
 protected:
  PackedGemmShapeTest() : PackedGemmBase(std::get<1>(GetParam())) {}
  void SetUp() override {
    if (!Supported()) GTEST_SKIP() << "this CPU lacks " << IsaName(isa_);
  }
};

std::string CaseName(const ::testing::TestParamInfo<ShapeAndIsa>& info) {
  return ShapeName(std::get<0>(info.param)) + "_" + IsaName(std::get<1>(info.param));
}

const PackedGemmIsa kIsas[] = {PackedGemmIsa::kAvx512, PackedGemmIsa::kAvx2};

// Against a double-precision reference, with strided x and y whose padding is poisoned: the
// padding must come back untouched and every output within the fp32 error bound of a k-term
// sum, k * 2^-24 * sum |x w|.
TEST_P(PackedGemmShapeTest, MatchesDoublePrecisionAndWritesOnlyItsOutputs) {
  const auto [m, n, k] = std::get<0>(GetParam());
  const size_t ldx = k + 3;
  const size_t ldy = n + 5;
  const std::vector<float> x = Random(m * ldx, 1);
  const std::vector<float> w = Random(n * k, 2);
  const PackedMatrix packed = PackOrDie(w, n, k);
  EXPECT_EQ(packed.n(), n);
  EXPECT_EQ(packed.k(), k);
  const float poison = -12345.0f;
  std::vector<float> y(m * ldy, poison);
  Multiply(x.data(), ldx, m, packed, 0, n, y.data(), ldy);
  for (size_t r = 0; r < m; ++r) {
    for (size_t c = 0; c < n; ++c) {
      double ref = 0, mag = 0;
      for (size_t i = 0; i < k; ++i) {
        const double p = static_cast<double>(x[r * ldx + i]) * w[c * k + i];
        ref += p;
        mag += std::abs(p);
      }
      const double bound = static_cast<double>(k + 1) * std::ldexp(1.0, -24) * mag;
      ASSERT_LE(std::abs(y[r * ldy + c] - ref), bound) << "row " << r << ", column " << c;
    }
    for (size_t c = n; c < ldy; ++c) ASSERT_EQ(y[r * ldy + c], poison) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PackedGemmShapeTest,
    ::testing::Combine(::testing::Values(Shape{1, 1, 1}, Shape{1, 32, 1}, Shape{7, 33, 1},
                                         Shape{1, 5, 7}, Shape{13, 31, 16}, Shape{14, 32, 64},
                                         Shape{15, 33, 65}, Shape{16, 64, 384}, Shape{29, 17, 3},
                                         Shape{111, 100, 77}, Shape{112, 96, 40},
                                         Shape{113, 95, 41}, Shape{127, 130, 129},
                                         Shape{250, 48, 385}, Shape{600, 40, 33},
                                         Shape{3, 1152, 384}, Shape{2, 384, 1536}),
                       ::testing::ValuesIn(kIsas)),
    CaseName);

// The rule the backend relies on: a row's output is the same bits whatever it is computed with.
class PackedGemmIdentityTest : public PackedGemmShapeTest {};

TEST_P(PackedGemmIdentityTest, RowsDoNotDependOnTheirBatch) {
  const auto [m, n, k] = std::get<0>(GetParam());
  const std::vector<float> x = Random(m * k, 3);
  const PackedMatrix w = PackOrDie(Random(n * k, 4), n, k);
  const std::vector<float> full = Gemm(x, m, w);

  // Each row alone.
  std::vector<float> one(n);
  for (size_t r = 0; r < m; ++r) {
    Multiply(x.data() + r * k, k, 1, w, 0, n, one.data(), n);
    ASSERT_TRUE(SameBits(one.data(), full.data() + r * n, n)) << "row " << r << " alone";
  }
  // Row ranges at every offset and of every length up to three tiles, so each row falls at every
  // position of a tile and in every tail tile; over the first two panels only (columns do not
  // interact), which keeps the sweep fast enough for sanitizer builds.
  const size_t sweep_cols = std::min(n, 2 * kPanel);
  std::vector<float> part(m * sweep_cols);
  for (size_t r0 = 0; r0 < std::min<size_t>(m, 31); ++r0) {
    for (size_t rows = 1; rows <= std::min<size_t>(m - r0, 45); ++rows) {
      Multiply(x.data() + r0 * k, k, rows, w, 0, sweep_cols, part.data(), sweep_cols);
      for (size_t r = 0; r < rows; ++r) {
        ASSERT_TRUE(SameBits(part.data() + r * sweep_cols, full.data() + (r0 + r) * n, sweep_cols))
            << "row " << r0 + r << " of rows [" << r0 << ", " << r0 + rows << ")";
      }
    }
  }
  // Column ranges: every split into two at a panel boundary, and one panel at a time.
  for (size_t split = kPanel; split < n; split += kPanel) {
    std::vector<float> y(m * n);
    Multiply(x.data(), k, m, w, 0, split, y.data(), n);
    Multiply(x.data(), k, m, w, split, n - split, y.data() + split, n);
    ASSERT_TRUE(SameBits(y.data(), full.data(), m * n)) << "split at column " << split;
  }
  {
    std::vector<float> y(m * n);
    for (size_t c = 0; c < n; c += kPanel) {
      Multiply(x.data(), k, m, w, c, std::min(kPanel, n - c), y.data() + c, n);
    }
    ASSERT_TRUE(SameBits(y.data(), full.data(), m * n)) << "one panel at a time";
  }
  // Two threads, by row blocks and by column blocks, as CpuBackend splits work.
  ThreadPool pool(2);
  for (size_t grain : {size_t{1}, size_t{16}, size_t{37}}) {
    std::vector<float> y(m * n);
    pool.ParallelFor(m, grain, [&](size_t begin, size_t end) {
      Multiply(x.data() + begin * k, k, end - begin, w, 0, n, y.data() + begin * n, n);
    });
    ASSERT_TRUE(SameBits(y.data(), full.data(), m * n)) << "2 threads, rows of " << grain;
  }
  {
    std::vector<float> y(m * n);
    pool.ParallelFor(n, kPanel, [&](size_t begin, size_t end) {
      Multiply(x.data(), k, m, w, begin, end - begin, y.data() + begin, n);
    });
    ASSERT_TRUE(SameBits(y.data(), full.data(), m * n)) << "2 threads, column panels";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PackedGemmIdentityTest,
                         ::testing::Combine(::testing::Values(Shape{300, 100, 77}, Shape{45, 33, 1},
                                                              Shape{130, 1152, 384},
                                                              Shape{60, 384, 1536}),
                                            ::testing::ValuesIn(kIsas)),
                         CaseName);

TEST_P(PackedGemmTest, EveryRowCountGivesTheSameRows) {
  // m = 1..600 over one weight: each call's rows must equal the same rows of the largest call.
  const size_t n = 70, k = 50, max_m = 600;
  const std::vector<float> x = Random(max_m * k, 5);
  const PackedMatrix w = PackOrDie(Random(n * k, 6), n, k);
  const std::vector<float> full = Gemm(x, max_m, w);
  for (size_t m = 1; m < max_m; ++m) {
    const std::vector<float> y = Gemm(x, m, w);
    ASSERT_TRUE(SameBits(y.data(), full.data(), m * n)) << "m = " << m;
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, PackedGemmTest, ::testing::ValuesIn(kIsas),
                         [](const auto& p) { return std::string(IsaName(p.param)); });

TEST(PackedMatrixTest, RejectsEmptyShapes) {
  const std::vector<float> w(4, 1.0f);
  EXPECT_EQ(PackedMatrix::Pack(w.data(), 0, 4).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PackedMatrix::Pack(w.data(), 4, 0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::cpu
