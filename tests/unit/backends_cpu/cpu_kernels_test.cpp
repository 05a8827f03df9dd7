#include "backends/cpu/cpu_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace sluice::cpu {
namespace {

std::vector<float> Range(float lo, float hi, size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(n - 1);
  return x;
}

TEST(CpuKernelsTest, ExpIsAccurateToTwoUlpsOverTheSoftmaxRange) {
  const std::vector<float> x = Range(-87.0f, 88.0f, 100003);  // odd length: exercises the tail
  std::vector<float> y(x.size());
  ExpVector(x.data(), x.size(), y.data());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(y[i] - ref) / ref);
  }
  EXPECT_LT(worst, 2e-7);
  float zero = 0.0f, one = 0.0f;
  ExpVector(&zero, 1, &one);
  EXPECT_EQ(one, 1.0f);
}

struct ActivationCase {
  Activation act;
  double tolerance;  // absolute, over [-10, 10]
};

class CpuKernelsActivationTest : public ::testing::TestWithParam<ActivationCase> {};

TEST_P(CpuKernelsActivationTest, MatchesDoublePrecision) {
  const std::vector<float> x = Range(-10.0f, 10.0f, 20001);
  std::vector<float> y(x.size());
  ActivationVector(x.data(), x.size(), GetParam().act, y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    double ref = 0;
    switch (GetParam().act) {
      case Activation::kGelu:
        ref = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
        break;
      case Activation::kGeluTanh:
        ref = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
        break;
      case Activation::kRelu:
        ref = std::max(v, 0.0);
        break;
      case Activation::kSilu:
        ref = v / (1.0 + std::exp(-v));
        break;
    }
    ASSERT_NEAR(y[i], ref, GetParam().tolerance + 2e-7 * std::abs(ref)) << "x = " << v;
  }
}

INSTANTIATE_TEST_SUITE_P(All, CpuKernelsActivationTest,
                         ::testing::Values(ActivationCase{Activation::kGelu, 1e-6},
                                           ActivationCase{Activation::kGeluTanh, 1e-6},
                                           ActivationCase{Activation::kRelu, 0.0},
                                           ActivationCase{Activation::kSilu, 1e-6}));

TEST(CpuKernelsTest, SoftmaxMatchesDoubleAndSumsToOne) {
  for (size_t n : {1u, 5u, 8u, 13u, 40u, 512u}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = 30.0f * std::sin(static_cast<float>(i) * 1.7f) + 100.0f;
    std::vector<float> y = x;
    SoftmaxRow(y.data(), n);
    double mx = -1e300, sum = 0, total = 0;
    for (float v : x) mx = std::max(mx, static_cast<double>(v));
    for (float v : x) sum += std::exp(v - mx);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_NEAR(y[i], std::exp(x[i] - mx) / sum, 1e-6) << "n = " << n;
      total += y[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(CpuKernelsTest, LayerNormWithBiasAndResidualMatchesDouble) {
  const size_t rows = 3, cols = 37;
  std::vector<float> x(rows * cols), res(rows * cols), bias(cols), g(cols), b(cols);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = std::cos(static_cast<float>(i)) * 3.0f + 50.0f;  // a large mean
    res[i] = std::sin(static_cast<float>(i) * 0.3f);
  }
  for (size_t c = 0; c < cols; ++c) {
    bias[c] = 0.01f * static_cast<float>(c);
    g[c] = 1.0f + 0.02f * static_cast<float>(c);
    b[c] = -0.05f * static_cast<float>(c);
  }
  std::vector<float> out = res;  // aliasing the residual, as the encoder does
  AddBiasResidualLayerNorm(x.data(), bias.data(), out.data(), g.data(), b.data(), 1e-12f, rows,
                           cols, out.data());
  for (size_t r = 0; r < rows; ++r) {
    std::vector<double> v(cols);
    double mean = 0, var = 0;
    for (size_t c = 0; c < cols; ++c)
      mean += v[c] = double{x[r * cols + c]} + bias[c] + res[r * cols + c];
    mean /= cols;
    for (double e : v) var += (e - mean) * (e - mean);
    var /= cols;
    for (size_t c = 0; c < cols; ++c) {
      EXPECT_NEAR(out[r * cols + c], (v[c] - mean) / std::sqrt(var) * g[c] + b[c], 2e-5);
    }
  }
}

TEST(CpuKernelsTest, L2NormalizeKeepsZeroVectorsZero) {
  std::vector<float> z(7, 0.0f);
  L2Normalize(z.data(), z.size());
  for (float v : z) EXPECT_EQ(v, 0.0f);
  std::vector<float> v = {3.0f, 4.0f};
  L2Normalize(v.data(), v.size());
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
}

}  // namespace
}  // namespace sluice::cpu
