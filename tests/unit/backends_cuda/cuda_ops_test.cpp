// Each CUDA op against a double-precision CPU reference on fresh random data, with outputs
// poisoned (NaN) before the run so that an unwritten element fails the comparison.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cuda/cuda_handles.h"
#include "backends/cuda/device_arena.h"
#include "backends/cuda/kernels/add_layernorm.cuh"
#include "backends/cuda/kernels/attention.cuh"
#include "backends/cuda/kernels/embedding_layernorm.cuh"
#include "backends/cuda/kernels/fp8_quantize.cuh"
#include "backends/cuda/kernels/pooling.cuh"
#include "backends/cuda/lt_gemm.h"
#include "cuda_test_util.h"

namespace sluice::cuda {
namespace {

using testing::DeviceEnv;
using testing::FromBits;
using testing::MakeRandom16;
using testing::RelativeError;

const CudaDType kDTypes[] = {CudaDType::kF16, CudaDType::kBF16};

// Storage rounding dominates: about 2^-11 relative for fp16 and 2^-8 for bf16.
double Tolerance(CudaDType dtype) { return dtype == CudaDType::kF16 ? 2e-3 : 1.5e-2; }

void ReferenceLayerNorm(std::vector<double>& row, const std::vector<double>& gamma,
                        const std::vector<double>& beta, double eps) {
  const double n = static_cast<double>(row.size());
  double mean = 0;
  for (double v : row) mean += v;
  mean /= n;
  double var = 0;
  for (double v : row) var += (v - mean) * (v - mean);
  var /= n;
  const double inv = 1.0 / std::sqrt(var + eps);
  for (size_t i = 0; i < row.size(); ++i) row[i] = (row[i] - mean) * inv * gamma[i] + beta[i];
}

// ---------------------------------------------------------------------------------------------
// DeviceArena

TEST(DeviceArenaTest, CreateWithoutGpuIsUnavailable) {
  if (testing::HaveGpu()) GTEST_SKIP() << "a CUDA device is present";
  auto arena = DeviceArena::Create(0, 1 << 20);
  ASSERT_FALSE(arena.ok());
  EXPECT_EQ(arena.status().code(), StatusCode::kUnavailable) << arena.status().ToString();
}

TEST(DeviceArenaTest, MissingDeviceIsInvalidArgument) {
  SLUICE_SKIP_WITHOUT_GPU();
  auto arena = DeviceArena::Create(4096, 1 << 20);
  ASSERT_FALSE(arena.ok());
  EXPECT_EQ(arena.status().code(), StatusCode::kInvalidArgument) << arena.status().ToString();
}

TEST(DeviceArenaTest, EnforcesLimitAndReturnsMemory) {
  SLUICE_SKIP_WITHOUT_GPU();
  auto arena = DeviceArena::Create(0, 1 << 20);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  DeviceArena& a = **arena;
  auto first = a.Allocate(600 << 10);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first->data()) % DeviceArena::kAlignment, 0u);
  auto second = a.Allocate(600 << 10);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(a.in_use(), DeviceArena::AlignUp(600 << 10));
  { DeviceBuffer released = std::move(first).value(); }
  EXPECT_EQ(a.in_use(), 0u);
  auto third = a.Allocate(600 << 10);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST(DeviceArenaTest, DeviceOutOfMemoryIsUnavailable) {
  SLUICE_SKIP_WITHOUT_GPU();
  auto arena = DeviceArena::Create(0, ~size_t{0} / 2);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  auto huge = (*arena)->Allocate(size_t{1} << 50);  // a petabyte
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kUnavailable) << huge.status().ToString();
  EXPECT_EQ((*arena)->in_use(), 0u);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // the failure left no error behind
}

TEST(DeviceRegionTest, CarvesAlignedSlicesUntilFull) {
  SLUICE_SKIP_WITHOUT_GPU();
  auto arena = DeviceArena::Create(0, 1 << 20);
  ASSERT_TRUE(arena.ok());
  auto buffer = (*arena)->Allocate(1024);
  ASSERT_TRUE(buffer.ok());
  DeviceRegion region(std::move(buffer).value());
  auto a = region.Take<float>(10);
  auto b = region.Take<uint16_t>(3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(reinterpret_cast<std::byte*>(*b) - reinterpret_cast<std::byte*>(*a), 256);
  EXPECT_FALSE(region.TakeBytes(1024).ok());
  region.Reset();
  EXPECT_TRUE(region.TakeBytes(1024).ok());
}

// ---------------------------------------------------------------------------------------------
// LtGemm

// A cuBLASLt handle and an LtGemm over a poisoned workspace of `workspace_bytes` from `env`.
class TestGemm {
 public:
  TestGemm(DeviceEnv& env, size_t workspace_bytes) {
    auto handle = CublasLtHandle::Create();
    if (!handle.ok()) {
      status_ = handle.status();
      return;
    }
    handle_ = std::move(handle).value();
    workspace_ = env.Poisoned(workspace_bytes);
    auto gemm = LtGemm::Create(handle_.get(), workspace_, workspace_bytes);
    if (!gemm.ok()) {
      status_ = gemm.status();
      return;
    }
    gemm_ = std::move(gemm).value();
  }
  const Status& status() const { return status_; }
  LtGemm* operator->() const { return gemm_.get(); }
  void* workspace() const { return workspace_; }

 private:
  Status status_;
  CublasLtHandle handle_;
  void* workspace_ = nullptr;
  std::unique_ptr<LtGemm> gemm_;
};

struct GemmCase {
  int rows, in, out;
};

using GemmParam = std::tuple<GemmCase, GemmEpilogue, CudaDType>;

// cuBLASLt's GELU (the tanh approximation) in double precision.
double GeluTanh(double v) {
  return 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}

// Rows `rows` of X W^T (+ bias, then the activation) in double precision, row after row.
std::vector<double> ReferenceLinear(const testing::Random16& x, const testing::Random16& w,
                                    const testing::Random16& bias, GemmEpilogue epilogue, int in,
                                    int out, const std::vector<int>& rows) {
  std::vector<double> ref;
  ref.reserve(rows.size() * size_t(out));
  for (int r : rows) {
    for (int o = 0; o < out; ++o) {
      double acc = epilogue == GemmEpilogue::kNone ? 0.0 : bias.values[o];
      for (int k = 0; k < in; ++k)
        acc += x.values[size_t(r) * in + k] * w.values[size_t(o) * in + k];
      if (epilogue == GemmEpilogue::kBiasGelu) acc = GeluTanh(acc);
      if (epilogue == GemmEpilogue::kBiasRelu) acc = std::max(acc, 0.0);
      ref.push_back(acc);
    }
  }
  return ref;
}

// Random X [rows, in], W [out, in] (small, so that outputs stay near 1) and bias [out].
struct GemmOperands {
  testing::Random16 x, w, bias;
};

GemmOperands MakeGemmOperands(const GemmCase& c, CudaDType dtype, std::mt19937& rng) {
  GemmOperands g;
  g.x = MakeRandom16(size_t(c.rows) * c.in, dtype, rng);
  g.w = MakeRandom16(size_t(c.out) * c.in, dtype, rng, -0.1f, 0.1f);
  g.bias = MakeRandom16(c.out, dtype, rng);
  return g;
}

// `g` uploaded for `c` with `epilogue` (the bias only when it is used) into a poisoned output.
LinearArgs UploadGemm(DeviceEnv& env, const GemmCase& c, GemmEpilogue epilogue, CudaDType dtype,
                      const GemmOperands& g) {
  LinearArgs args;
  args.dtype = dtype;
  args.rows = c.rows;
  args.in_features = c.in;
  args.out_features = c.out;
  args.x = env.Upload(g.x.bits);
  args.w = env.Upload(g.w.bits);
  args.bias = epilogue == GemmEpilogue::kNone ? nullptr : env.Upload(g.bias.bits);
  args.y = env.Poisoned(size_t(c.rows) * c.out * 2);
  args.epilogue = epilogue;
  return args;
}

std::vector<int> FirstRows(int n) {
  std::vector<int> rows(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) rows[static_cast<size_t>(r)] = r;
  return rows;
}

class LtGemmTest : public ::testing::TestWithParam<GemmParam> {};

TEST_P(LtGemmTest, MatchesReference) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto [shape, epilogue, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const GemmOperands g = MakeGemmOperands(shape, dtype, rng);

  DeviceEnv env;
  TestGemm gemm(env, 32 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  const LinearArgs args = UploadGemm(env, shape, epilogue, dtype, g);
  ASSERT_TRUE(gemm->Linear(args, env.stream()).ok());
  // A second call with the same shape reuses the plan.
  ASSERT_TRUE(gemm->Linear(args, env.stream()).ok());
  EXPECT_EQ(gemm->cached_plans(), 1u);
  const auto y = env.Download16(args.y, size_t(shape.rows) * shape.out, dtype);

  const std::vector<double> ref =
      ReferenceLinear(g.x, g.w, g.bias, epilogue, shape.in, shape.out, FirstRows(shape.rows));
  EXPECT_LT(RelativeError(y, ref), Tolerance(dtype));
}

std::string GemmName(const ::testing::TestParamInfo<GemmParam>& p) {
  const GemmCase& c = std::get<0>(p.param);
  static const char* kEpilogues[] = {"none", "bias", "gelu", "relu"};
  return fmt::format("{}x{}x{}_{}_{}", c.rows, c.in, c.out,
                     kEpilogues[static_cast<int>(std::get<1>(p.param))],
                     CudaDTypeName(std::get<2>(p.param)));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LtGemmTest,
    ::testing::Combine(::testing::Values(GemmCase{1, 64, 64}, GemmCase{7, 384, 1152},
                                         GemmCase{33, 384, 1536}, GemmCase{130, 1536, 384},
                                         GemmCase{300, 768, 768}),
                       ::testing::Values(GemmEpilogue::kNone, GemmEpilogue::kBias,
                                         GemmEpilogue::kBiasGelu, GemmEpilogue::kBiasRelu),
                       ::testing::ValuesIn(kDTypes)),
    GemmName);

// Y = X W^T + residual + bias (the residual in the epilogue), separate and in place.
class LtGemmResidualTest : public ::testing::TestWithParam<std::tuple<GemmCase, bool, CudaDType>> {
};

TEST_P(LtGemmResidualTest, MatchesReference) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto [shape, in_place, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const size_t n = size_t(shape.rows) * shape.out;
  const GemmOperands g = MakeGemmOperands(shape, dtype, rng);
  const auto residual = MakeRandom16(n, dtype, rng, -2.0f, 2.0f);

  DeviceEnv env;
  TestGemm gemm(env, 32 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  gemm->set_autotune(true);
  void* residual_dev = env.Upload(residual.bits);
  LinearArgs args = UploadGemm(env, shape, GemmEpilogue::kBias, dtype, g);
  args.residual = residual_dev;
  // In place, the first call plans the shape without autotuning (which would run the product
  // several times over the residual it reads).
  if (in_place) args.y = residual_dev;
  ASSERT_TRUE(gemm->Linear(args, env.stream()).ok());
  EXPECT_EQ(gemm->cached_plans(), 1u);
  const auto y = env.Download16(args.y, n, dtype);

  std::vector<double> ref = ReferenceLinear(g.x, g.w, g.bias, GemmEpilogue::kBias, shape.in,
                                            shape.out, FirstRows(shape.rows));
  for (size_t i = 0; i < n; ++i) ref[i] += residual.values[i];
  EXPECT_LT(RelativeError(y, ref), Tolerance(dtype));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LtGemmResidualTest,
    ::testing::Combine(::testing::Values(GemmCase{5, 64, 64}, GemmCase{130, 1536, 384},
                                         GemmCase{300, 768, 768}),
                       ::testing::Bool(), ::testing::ValuesIn(kDTypes)),
    [](const ::testing::TestParamInfo<std::tuple<GemmCase, bool, CudaDType>>& p) {
      const GemmCase& c = std::get<0>(p.param);
      return fmt::format("{}x{}x{}{}_{}", c.rows, c.in, c.out,
                         std::get<1>(p.param) ? "_inplace" : "",
                         CudaDTypeName(std::get<2>(p.param)));
    });

TEST(LtGemmCandidatesTest, TimesTheHeuristicsListAndMarksTheChosenPlan) {
  SLUICE_SKIP_WITHOUT_GPU();
  DeviceEnv env;
  TestGemm gemm(env, 32 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  gemm->set_autotune(true);
  gemm->set_tune_candidates(4);
  std::mt19937 rng(testing::FreshSeed());
  LinearArgs args;
  args.rows = 256;
  args.in_features = 384;
  args.out_features = 1536;
  args.x = env.Upload(MakeRandom16(256 * 384, CudaDType::kF16, rng).bits);
  args.w = env.Upload(MakeRandom16(1536 * 384, CudaDType::kF16, rng).bits);
  args.bias = env.Upload(MakeRandom16(1536, CudaDType::kF16, rng).bits);
  args.y = env.Poisoned(256 * 1536 * 2);
  args.epilogue = GemmEpilogue::kBiasGelu;
  auto found = gemm->TimeCandidates(args, env.stream(), 6, 2);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_FALSE(found->empty());
  EXPECT_LE(found->size(), 6u);
  int chosen = 0;
  for (const GemmCandidate& c : *found) {
    chosen += c.chosen ? 1 : 0;
    EXPECT_FALSE(c.config.empty());
    if (c.chosen) {
      EXPECT_GT(c.ms, 0.0f);
    }
  }
  EXPECT_EQ(chosen, 1);
  // Custom-option variants join the list only for shapes of at least the rows asked for.
  gemm->set_tune_custom_options(true, args.rows + 1);
  auto same = gemm->TimeCandidates(args, env.stream(), 6, 2);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->size(), found->size());
  gemm->set_tune_custom_options(true, args.rows);
  auto wider = gemm->TimeCandidates(args, env.stream(), 6, 2);
  ASSERT_TRUE(wider.ok()) << wider.status().ToString();
  EXPECT_GE(wider->size(), found->size());
  args.rows = 0;
  EXPECT_EQ(gemm->TimeCandidates(args, env.stream(), 4, 2).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      gemm->ForEachCandidate(args, env.stream(), 4, [](const std::string&) { return Status::Ok(); })
          .code(),
      StatusCode::kInvalidArgument);
}

// Every algorithm autotuning may pick, custom-option variants included, at a batch-256 shape:
// each one writes every output (poisoned again before each) and matches the reference on a
// sample of rows.
class LtGemmEveryCandidateTest : public ::testing::TestWithParam<GemmParam> {};

TEST_P(LtGemmEveryCandidateTest, MatchesReference) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto [shape, epilogue, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const size_t n = size_t(shape.rows) * shape.out;
  const GemmOperands g = MakeGemmOperands(shape, dtype, rng);
  std::vector<int> rows;
  for (int i = 0; i < 24; ++i) rows.push_back(static_cast<int>(rng() % shape.rows));
  rows.push_back(0);
  rows.push_back(shape.rows - 1);
  const std::vector<double> ref =
      ReferenceLinear(g.x, g.w, g.bias, epilogue, shape.in, shape.out, rows);

  DeviceEnv env;
  TestGemm gemm(env, 32 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  gemm->set_tune_custom_options(true);
  LinearArgs args = UploadGemm(env, shape, epilogue, dtype, g);
  int checked = 0;
  const Status s =
      gemm->ForEachCandidate(args, env.stream(), 8, [&](const std::string& config) -> Status {
        SCOPED_TRACE(config);
        ++checked;
        const auto bits = env.Download<uint16_t>(args.y, n);
        const uint16_t exponent = dtype == CudaDType::kF16 ? 0x7C00 : 0x7F80;
        size_t unwritten = 0;
        for (uint16_t b : bits) unwritten += (b & exponent) == exponent ? 1 : 0;
        EXPECT_EQ(unwritten, 0u);
        std::vector<double> got;
        for (int r : rows) {
          for (int o = 0; o < shape.out; ++o) {
            got.push_back(FromBits(bits[size_t(r) * shape.out + o], dtype));
          }
        }
        EXPECT_LT(RelativeError(got, ref), Tolerance(dtype));
        if (cudaMemsetAsync(args.y, 0xFF, n * 2, env.stream()) != cudaSuccess) {
          return Internal("memset");
        }
        return Status::Ok();
      });
  ASSERT_TRUE(s.ok()) << s.ToString();
  // The custom options add to the heuristic's own candidates.
  gemm->set_tune_custom_options(false);
  int heuristic = 0;
  ASSERT_TRUE(gemm->ForEachCandidate(args, env.stream(), 8,
                                     [&](const std::string&) {
                                       ++heuristic;
                                       return Status::Ok();
                                     })
                  .ok());
  EXPECT_GT(heuristic, 0);
  EXPECT_GE(checked, heuristic);
  RecordProperty("candidates", checked);
  RecordProperty("heuristic_candidates", heuristic);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LtGemmEveryCandidateTest,
    ::testing::Values(
        GemmParam{GemmCase{8192, 768, 3072}, GemmEpilogue::kBiasGelu, CudaDType::kF16},
        GemmParam{GemmCase{8192, 768, 3072}, GemmEpilogue::kBiasGelu, CudaDType::kBF16},
        GemmParam{GemmCase{8192, 3072, 768}, GemmEpilogue::kNone, CudaDType::kF16},
        GemmParam{GemmCase{8192, 768, 2304}, GemmEpilogue::kNone, CudaDType::kF16}),
    GemmName);

// With reuse on, new rows in a tuned power-of-two class take its algorithm untimed.
TEST(LtGemmReuseTuningTest, NewRowsInATunedClassAreNotTimedAndStayCorrect) {
  SLUICE_SKIP_WITHOUT_GPU();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const GemmCase largest{600, 384, 1536};
  const int in = largest.in, out = largest.out;
  const GemmOperands g = MakeGemmOperands(largest, CudaDType::kF16, rng);
  DeviceEnv env;
  TestGemm gemm(env, 32 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  gemm->set_autotune(true);
  LinearArgs args = UploadGemm(env, largest, GemmEpilogue::kBiasGelu, CudaDType::kF16, g);
  const auto run = [&](int rows) {
    args.rows = rows;
    const Status s = gemm->Linear(args, env.stream());
    EXPECT_TRUE(s.ok()) << s.ToString();
  };
  run(300);  // class 512, timed
  EXPECT_EQ(gemm->tuned_shapes(), 1u);
  gemm->set_reuse_tuning(true);
  run(260);  // class 512: reused
  EXPECT_EQ(gemm->tuned_shapes(), 1u);
  EXPECT_EQ(gemm->cached_plans(), 2u);
  const auto y = env.Download16(args.y, size_t(260) * out, CudaDType::kF16);
  const std::vector<double> ref =
      ReferenceLinear(g.x, g.w, g.bias, GemmEpilogue::kBiasGelu, in, out, FirstRows(260));
  EXPECT_LT(RelativeError(y, ref), Tolerance(CudaDType::kF16));
  run(600);  // class 1024, not tuned yet: timed
  EXPECT_EQ(gemm->tuned_shapes(), 2u);
  gemm->set_reuse_tuning(false);
  run(290);  // class 512 again, but without reuse every new shape is timed
  EXPECT_EQ(gemm->tuned_shapes(), 3u);
}

TEST(LtGemmBadInputTest, RejectsEmptyShapesAndMissingOperands) {
  SLUICE_SKIP_WITHOUT_GPU();
  DeviceEnv env;
  TestGemm gemm(env, 1 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  void* ws = gemm.workspace();
  LinearArgs args;
  args.rows = 0;
  args.in_features = 8;
  args.out_features = 8;
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);
  args.rows = 8;
  args.x = args.w = args.y = ws;
  args.epilogue = GemmEpilogue::kBias;  // with no bias pointer
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// fp8 (E4M3): conversions and GEMMs

double E4m3ToDouble(uint8_t bits) {
  const int sign = bits >> 7;
  const int exponent = (bits >> 3) & 0xf;
  const int mantissa = bits & 7;
  if (exponent == 0xf && mantissa == 7) return std::nan("");
  const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return sign != 0 ? -magnitude : magnitude;
}

// The E4M3 value nearest to v (saturating), by search: the reference the device must equal.
double NearestE4m3(double v) {
  double best = 0.0;
  for (int b = 0; b < 256; ++b) {
    const double c = E4m3ToDouble(static_cast<uint8_t>(b));
    if (std::isnan(c)) continue;
    if (std::abs(c - v) < std::abs(best - v)) best = c;
  }
  return best;
}

TEST(Fp8ConvertTest, RoundsToNearestAndSaturates) {
  SLUICE_SKIP_WITHOUT_GPU();
  std::mt19937 rng(testing::FreshSeed());
  auto x = MakeRandom16(4096, CudaDType::kF16, rng, -600.0f, 600.0f);
  DeviceEnv env;
  auto* y = static_cast<uint8_t*>(env.Poisoned(x.bits.size()));
  ASSERT_TRUE(
      ConvertToE4m3(CudaDType::kF16, env.Upload(x.bits), x.bits.size(), y, env.stream()).ok());
  const auto out = env.Download<uint8_t>(y, x.bits.size());
  int mismatches = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double got = E4m3ToDouble(out[i]);
    const double want = NearestE4m3(x.values[i]);
    // Ties may go either way; anything else is a bug.
    if (got != want &&
        std::abs(std::abs(got - x.values[i]) - std::abs(want - x.values[i])) > 1e-9) {
      ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(ConvertToE4m3(CudaDType::kF16, nullptr, 4, y, env.stream()).code(),
            StatusCode::kInvalidArgument);
}

TEST(Fp8ConvertTest, WeightScaleMapsTheAbsoluteMaximumTo448) {
  SLUICE_SKIP_WITHOUT_GPU();
  for (CudaDType dtype : kDTypes) {
    std::mt19937 rng(testing::FreshSeed());
    auto w = MakeRandom16(100000, dtype, rng, -0.05f, 0.05f);
    double amax = 0;
    for (double v : w.values) amax = std::max(amax, std::abs(v));
    DeviceEnv env;
    auto* y = static_cast<uint8_t*>(env.Poisoned(w.bits.size()));
    auto* scale = static_cast<float*>(env.Poisoned(sizeof(float)));
    ASSERT_TRUE(
        QuantizeWeightE4m3(dtype, env.Upload(w.bits), w.bits.size(), scale, y, env.stream()).ok());
    const float s = env.Download<float>(scale, 1)[0];
    EXPECT_NEAR(s, amax / 448.0, amax / 448.0 * 1e-6);
    const auto q = env.Download<uint8_t>(y, w.bits.size());
    double worst = 0;
    for (size_t i = 0; i < q.size(); ++i) {
      worst = std::max(worst, std::abs(E4m3ToDouble(q[i]) * s - w.values[i]) /
                                  std::max(std::abs(w.values[i]), amax / 64));
    }
    EXPECT_LE(worst, 1.0 / 16 + 1e-6);  // half a unit of E4M3's 3-bit mantissa
  }
}

TEST(Fp8ConvertTest, LayerNormCopyEqualsConvertingItsOutput) {
  SLUICE_SKIP_WITHOUT_GPU();
  for (int hidden : {768, 1030}) {  // the warp kernel and the block kernel
    std::mt19937 rng(testing::FreshSeed());
    const int rows = 9;
    const size_t n = size_t(rows) * hidden;
    const auto x = MakeRandom16(n, CudaDType::kF16, rng, -3.0f, 3.0f);
    const auto residual = MakeRandom16(n, CudaDType::kF16, rng);
    const auto gamma = MakeRandom16(hidden, CudaDType::kF16, rng, 0.5f, 4.0f);
    const auto beta = MakeRandom16(hidden, CudaDType::kF16, rng);
    DeviceEnv env;
    AddLayerNormArgs args;
    args.rows = rows;
    args.hidden = hidden;
    args.x = env.Upload(x.bits);
    args.residual = env.Upload(residual.bits);
    args.gamma = env.Upload(gamma.bits);
    args.beta = env.Upload(beta.bits);
    args.out = env.Poisoned(n * 2);
    args.out_fp8 = static_cast<uint8_t*>(env.Poisoned(n));
    ASSERT_TRUE(AddLayerNorm(args, env.stream()).ok());
    auto* converted = static_cast<uint8_t*>(env.Poisoned(n));
    ASSERT_TRUE(ConvertToE4m3(CudaDType::kF16, args.out, n, converted, env.stream()).ok());
    EXPECT_EQ(env.Download<uint8_t>(args.out_fp8, n), env.Download<uint8_t>(converted, n))
        << "hidden " << hidden;
  }
}

struct Fp8GemmParam {
  GemmCase shape;
  GemmEpilogue epilogue;
  bool y_fp8, fast_accum;
};

class LtGemmFp8Test : public ::testing::TestWithParam<Fp8GemmParam> {};

std::string Fp8GemmName(const ::testing::TestParamInfo<Fp8GemmParam>& p) {
  const Fp8GemmParam& c = p.param;
  static const char* kEpilogues[] = {"none", "bias", "gelu", "relu"};
  return fmt::format("{}x{}x{}_{}{}{}", c.shape.rows, c.shape.in, c.shape.out,
                     kEpilogues[static_cast<int>(c.epilogue)], c.y_fp8 ? "_fp8out" : "",
                     c.fast_accum ? "_fast" : "");
}

TEST_P(LtGemmFp8Test, MatchesReferenceOnTheQuantizedOperands) {
  SLUICE_SKIP_WITHOUT_GPU();
  if (!testing::GpuComputeCapabilityAtLeast(89)) GTEST_SKIP() << "no fp8 tensor cores";
  const auto [shape, epilogue, y_fp8, fast_accum] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const CudaDType dtype = CudaDType::kF16;
  const auto x = MakeRandom16(size_t(shape.rows) * shape.in, dtype, rng, -2.0f, 2.0f);
  const auto w = MakeRandom16(size_t(shape.out) * shape.in, dtype, rng, -0.1f, 0.1f);
  const auto bias = MakeRandom16(shape.out, dtype, rng);

  DeviceEnv env;
  auto* x8 = static_cast<uint8_t*>(env.Poisoned(x.bits.size()));
  auto* w8 = static_cast<uint8_t*>(env.Poisoned(w.bits.size()));
  auto* scale = static_cast<float*>(env.Poisoned(sizeof(float)));
  ASSERT_TRUE(ConvertToE4m3(dtype, env.Upload(x.bits), x.bits.size(), x8, env.stream()).ok());
  ASSERT_TRUE(
      QuantizeWeightE4m3(dtype, env.Upload(w.bits), w.bits.size(), scale, w8, env.stream()).ok());
  TestGemm gemm(env, 32 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  gemm->set_autotune(true);
  const size_t n = size_t(shape.rows) * shape.out;
  LinearArgs args;
  args.dtype = dtype;
  args.rows = shape.rows;
  args.in_features = shape.in;
  args.out_features = shape.out;
  args.x = x8;
  args.w = w8;
  args.bias = epilogue == GemmEpilogue::kNone ? nullptr : env.Upload(bias.bits);
  args.y = env.Poisoned(n * (y_fp8 ? 1 : 2));
  args.epilogue = epilogue;
  args.fp8 = true;
  args.w_scale = scale;
  args.y_fp8 = y_fp8;
  args.fast_accum = fast_accum;
  args.c_unused = y_fp8 ? env.Poisoned(n * 2) : nullptr;
  const Status run = gemm->Linear(args, env.stream());
  ASSERT_TRUE(run.ok()) << run.ToString();

  const auto xq = env.Download<uint8_t>(x8, x.bits.size());
  const auto wq = env.Download<uint8_t>(w8, w.bits.size());
  const double s = env.Download<float>(scale, 1)[0];
  std::vector<double> xd, wd;
  for (uint8_t b : xq) xd.push_back(E4m3ToDouble(b));
  for (uint8_t b : wq) wd.push_back(E4m3ToDouble(b));
  std::vector<double> ref(n);
  for (int r = 0; r < shape.rows; ++r) {
    for (int o = 0; o < shape.out; ++o) {
      double acc = 0;
      for (int k = 0; k < shape.in; ++k) {
        acc += xd[size_t(r) * shape.in + k] * wd[size_t(o) * shape.in + k];
      }
      acc = acc * s + (epilogue == GemmEpilogue::kNone ? 0.0 : bias.values[o]);
      if (epilogue == GemmEpilogue::kBiasGelu) {
        acc = GeluTanh(acc);
      }
      ref[size_t(r) * shape.out + o] = acc;
    }
  }
  std::vector<double> y;
  if (y_fp8) {
    for (uint8_t b : env.Download<uint8_t>(args.y, n)) y.push_back(E4m3ToDouble(b));
  } else {
    y = env.Download16(args.y, n, dtype);
  }
  // The output's own rounding (E4M3: 2^-4; fp16: 2^-11) plus the accumulation's; fast
  // accumulation keeps fewer bits of the partial sums.
  const double tolerance = y_fp8 ? 4e-2 : fast_accum ? 5e-3 : 2e-3;
  EXPECT_LT(RelativeError(y, ref), tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LtGemmFp8Test,
    ::testing::Values(Fp8GemmParam{{1, 64, 64}, GemmEpilogue::kNone, false, false},
                      Fp8GemmParam{{7, 384, 1152}, GemmEpilogue::kNone, false, false},
                      Fp8GemmParam{{64, 384, 1536}, GemmEpilogue::kBiasGelu, true, false},
                      Fp8GemmParam{{64, 768, 3072}, GemmEpilogue::kBiasGelu, true, false},
                      Fp8GemmParam{{200, 768, 3072}, GemmEpilogue::kBiasGelu, false, false},
                      Fp8GemmParam{{130, 1536, 384}, GemmEpilogue::kBias, false, false},
                      Fp8GemmParam{{300, 768, 768}, GemmEpilogue::kNone, false, true},
                      Fp8GemmParam{{256, 768, 3072}, GemmEpilogue::kBiasGelu, true, true}),
    Fp8GemmName);

TEST(LtGemmFp8BadInputTest, RejectsMissingScaleBf16AndUnalignedSizes) {
  SLUICE_SKIP_WITHOUT_GPU();
  DeviceEnv env;
  TestGemm gemm(env, 1 << 20);
  ASSERT_TRUE(gemm.status().ok()) << gemm.status().ToString();
  void* ws = gemm.workspace();
  LinearArgs args;
  args.rows = 8;
  args.in_features = 64;
  args.out_features = 64;
  args.x = args.w = args.y = ws;
  args.fp8 = true;
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);  // no scale
  args.w_scale = static_cast<const float*>(ws);
  args.dtype = CudaDType::kBF16;
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);
  args.dtype = CudaDType::kF16;
  args.in_features = 40;
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);
  args.in_features = 64;
  args.w_scale = static_cast<const float*>(ws) + 1;  // not 16-byte aligned
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);
  args.w_scale = static_cast<const float*>(ws);
  args.y_fp8 = true;  // without a placeholder C
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);
  args.fp8 = false;
  args.c_unused = ws;  // fp8 output from 16-bit inputs
  EXPECT_EQ(gemm->Linear(args, env.stream()).code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// EmbeddingLayerNorm

struct EmbeddingCase {
  int tokens, hidden;
  bool token_types;
  int position_offset;
};

class EmbeddingLayerNormTest
    : public ::testing::TestWithParam<std::tuple<EmbeddingCase, CudaDType>> {};

TEST_P(EmbeddingLayerNormTest, MatchesReference) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto [c, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const int vocab = 50, positions = 64, types = 2;
  const auto word = MakeRandom16(size_t(vocab) * c.hidden, dtype, rng);
  const auto pos = MakeRandom16(size_t(positions) * c.hidden, dtype, rng);
  const auto type = MakeRandom16(size_t(types) * c.hidden, dtype, rng);
  const auto gamma = MakeRandom16(c.hidden, dtype, rng, 0.5f, 1.5f);
  const auto beta = MakeRandom16(c.hidden, dtype, rng);
  std::vector<int32_t> ids(c.tokens), type_ids(c.tokens), position_ids(c.tokens);
  for (int t = 0; t < c.tokens; ++t) {
    ids[t] = int32_t(rng() % vocab);
    type_ids[t] = int32_t(rng() % types);
    position_ids[t] = int32_t(rng() % (positions - c.position_offset));
  }

  DeviceEnv env;
  EmbeddingLayerNormArgs args;
  args.dtype = dtype;
  args.tokens = c.tokens;
  args.hidden = c.hidden;
  args.input_ids = static_cast<const int32_t*>(env.Upload(ids));
  args.token_type_ids = static_cast<const int32_t*>(env.Upload(type_ids));
  args.position_ids = static_cast<const int32_t*>(env.Upload(position_ids));
  args.position_offset = c.position_offset;
  args.word = env.Upload(word.bits);
  args.position = env.Upload(pos.bits);
  args.token_type = c.token_types ? env.Upload(type.bits) : nullptr;
  args.gamma = env.Upload(gamma.bits);
  args.beta = env.Upload(beta.bits);
  args.eps = 1e-12f;
  args.out = env.Poisoned(size_t(c.tokens) * c.hidden * 2);
  ASSERT_TRUE(EmbeddingLayerNorm(args, env.stream()).ok());
  const auto out = env.Download16(args.out, size_t(c.tokens) * c.hidden, dtype);

  std::vector<double> ref;
  for (int t = 0; t < c.tokens; ++t) {
    std::vector<double> row(c.hidden);
    for (int i = 0; i < c.hidden; ++i) {
      row[i] = word.values[size_t(ids[t]) * c.hidden + i] +
               pos.values[size_t(position_ids[t] + c.position_offset) * c.hidden + i] +
               (c.token_types ? type.values[size_t(type_ids[t]) * c.hidden + i] : 0.0);
    }
    ReferenceLayerNorm(row, gamma.values, beta.values, 1e-12);
    ref.insert(ref.end(), row.begin(), row.end());
  }
  EXPECT_LT(RelativeError(out, ref), Tolerance(dtype));
}

std::string EmbeddingName(const ::testing::TestParamInfo<std::tuple<EmbeddingCase, CudaDType>>& p) {
  const EmbeddingCase& c = std::get<0>(p.param);
  return fmt::format("{}x{}{}_off{}_{}", c.tokens, c.hidden, c.token_types ? "_types" : "",
                     c.position_offset, CudaDTypeName(std::get<1>(p.param)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingLayerNormTest,
                         ::testing::Combine(::testing::Values(EmbeddingCase{1, 32, false, 0},
                                                              EmbeddingCase{17, 384, true, 0},
                                                              EmbeddingCase{100, 768, true, 0},
                                                              EmbeddingCase{5, 1024, true, 2},
                                                              // The block-per-token kernel:
                                                              // not a multiple of 8, too wide.
                                                              EmbeddingCase{6, 36, true, 1},
                                                              EmbeddingCase{3, 2560, false, 0}),
                                            ::testing::ValuesIn(kDTypes)),
                         EmbeddingName);

// ---------------------------------------------------------------------------------------------
// AddLayerNorm

struct AddLayerNormCase {
  int rows, hidden;
  bool bias, in_place;
  bool residual = true;  // without one, x already holds the sum (in place: out == x)
};

class AddLayerNormTest : public ::testing::TestWithParam<std::tuple<AddLayerNormCase, CudaDType>> {
};

TEST_P(AddLayerNormTest, MatchesReference) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto [c, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const size_t n = size_t(c.rows) * c.hidden;
  const auto x = MakeRandom16(n, dtype, rng, -2.0f, 2.0f);
  const auto residual = MakeRandom16(n, dtype, rng);
  const auto bias = MakeRandom16(c.hidden, dtype, rng);
  const auto gamma = MakeRandom16(c.hidden, dtype, rng, 0.5f, 1.5f);
  const auto beta = MakeRandom16(c.hidden, dtype, rng);

  DeviceEnv env;
  AddLayerNormArgs args;
  args.dtype = dtype;
  args.rows = c.rows;
  args.hidden = c.hidden;
  void* x_dev = env.Upload(x.bits);
  args.x = x_dev;
  args.bias = c.bias ? env.Upload(bias.bits) : nullptr;
  void* residual_dev = c.residual ? env.Upload(residual.bits) : nullptr;
  args.residual = residual_dev;
  args.gamma = env.Upload(gamma.bits);
  args.beta = env.Upload(beta.bits);
  args.eps = 1e-5f;
  args.out = !c.in_place ? env.Poisoned(n * 2) : c.residual ? residual_dev : x_dev;
  ASSERT_TRUE(AddLayerNorm(args, env.stream()).ok());
  const auto out = env.Download16(args.out, n, dtype);

  std::vector<double> ref;
  for (int r = 0; r < c.rows; ++r) {
    std::vector<double> row(c.hidden);
    for (int i = 0; i < c.hidden; ++i) {
      const size_t k = size_t(r) * c.hidden + i;
      row[i] =
          x.values[k] + (c.residual ? residual.values[k] : 0.0) + (c.bias ? bias.values[i] : 0.0);
    }
    ReferenceLayerNorm(row, gamma.values, beta.values, 1e-5);
    ref.insert(ref.end(), row.begin(), row.end());
  }
  EXPECT_LT(RelativeError(out, ref), Tolerance(dtype));
}

std::string AddLayerNormName(
    const ::testing::TestParamInfo<std::tuple<AddLayerNormCase, CudaDType>>& p) {
  const AddLayerNormCase& c = std::get<0>(p.param);
  return fmt::format("{}x{}{}{}{}_{}", c.rows, c.hidden, c.bias ? "_bias" : "",
                     c.in_place ? "_inplace" : "", c.residual ? "" : "_noresidual",
                     CudaDTypeName(std::get<1>(p.param)));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AddLayerNormTest,
    ::testing::Combine(::testing::Values(AddLayerNormCase{1, 32, false, false},
                                         AddLayerNormCase{50, 384, true, false},
                                         AddLayerNormCase{13, 768, false, true},
                                         AddLayerNormCase{3, 1000, true, true},
                                         AddLayerNormCase{7, 2048, true, true},
                                         AddLayerNormCase{5, 1030, false, false},
                                         AddLayerNormCase{2, 8192, true, false},
                                         AddLayerNormCase{9, 768, true, false, false},
                                         AddLayerNormCase{6, 384, false, true, false},
                                         AddLayerNormCase{4, 1030, true, true, false}),
                       ::testing::ValuesIn(kDTypes)),
    AddLayerNormName);

TEST(LayerNormBadInputTest, RejectsWidthsOutsideTheKernel) {
  // Checked before any launch, so this runs without a GPU too.
  AddLayerNormArgs add;
  add.rows = 1;
  add.hidden = 0;
  EXPECT_EQ(AddLayerNorm(add, nullptr).code(), StatusCode::kInvalidArgument);
  add.hidden = 8193;
  EXPECT_EQ(AddLayerNorm(add, nullptr).code(), StatusCode::kInvalidArgument);
  EmbeddingLayerNormArgs embed;
  embed.tokens = -1;
  embed.hidden = 64;
  EXPECT_EQ(EmbeddingLayerNorm(embed, nullptr).code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// FusedAttention

struct AttentionCase {
  std::vector<int> lengths;
  int heads, head_dim;
  bool bias = false;  // the fused projection's bias, applied by the kernel
};

const AttentionCase kAttentionCases[] = {
    {{1}, 2, 32},
    {{5, 64, 65, 130}, 3, 32},
    {{300}, 12, 32},
    {{17, 1, 200}, 2, 64},
    {{64, 129, 7}, 2, 128},
    {{513, 3, 128, 70}, 2, 64},
    {{260, 1}, 1, 128},
    {{128, 100, 128, 64, 700, 33, 128}, 3, 64, true},
    {{128, 90, 600, 33, 256}, 4, 32, true},
    // Short sequences, which packed tiles group (up to 64 tokens a tile).
    {{32, 32, 32, 32, 5, 64, 1, 1, 17, 40, 130, 3}, 2, 64, true},
    {{31, 33, 10, 64, 2, 3, 1, 50}, 4, 32, true},
    {{20, 30, 64, 1, 100, 7}, 2, 128},
};

class FusedAttentionTest : public ::testing::TestWithParam<std::tuple<AttentionCase, CudaDType>> {};

TEST_P(FusedAttentionTest, MatchesReference) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto [c, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  std::vector<int32_t> cu{0};
  for (int len : c.lengths) cu.push_back(cu.back() + len);
  const int tokens = cu.back();
  const int hidden = c.heads * c.head_dim;
  // Spread of +-2 gives peaked softmax rows, which exercise the running-max rescaling.
  const auto qkv = MakeRandom16(size_t(tokens) * 3 * hidden, dtype, rng, -2.0f, 2.0f);
  const auto bias = MakeRandom16(3 * size_t(hidden), dtype, rng, -1.0f, 1.0f);
  auto value = [&](size_t token, size_t column) {
    return qkv.values[token * 3 * hidden + column] + (c.bias ? bias.values[column] : 0.0);
  };

  DeviceEnv env;
  // Each launch mode through the portable kernel, then through the one FusedAttention picks
  // (the Hopper kernel for head size 64, and 32 with an even number of heads, on a compute
  // capability 9.0 GPU).
  std::vector<std::pair<std::string, std::vector<double>>> outs;
  for (const bool hopper : {false, true}) {
    const std::string kernel = hopper ? "default kernel" : "portable kernel";
    AttentionArgs args;
    args.dtype = dtype;
    args.num_sequences = int(c.lengths.size());
    args.max_seqlen = *std::max_element(c.lengths.begin(), c.lengths.end());
    args.num_heads = c.heads;
    args.head_dim = c.head_dim;
    args.qkv = env.Upload(qkv.bits);
    args.qkv_bias = c.bias ? env.Upload(bias.bits) : nullptr;
    args.cu_seqlens = static_cast<const int32_t*>(env.Upload(cu));
    args.scale = 1.0f / std::sqrt(float(c.head_dim));
    args.out = env.Poisoned(size_t(tokens) * hidden * 2);
    args.total_rows = tokens;
    args.hopper = hopper;
    if (hopper && testing::ComputeCapability() == 90) {
      EXPECT_EQ(FusedAttentionUsesHopperKernel(args),
                c.head_dim == 64 || (c.head_dim == 32 && c.heads % 2 == 0));
    }
    if (!hopper) {
      EXPECT_FALSE(FusedAttentionUsesHopperKernel(args));
    }
    ASSERT_TRUE(FusedAttention(args, env.stream()).ok());
    outs.emplace_back(kernel, env.Download16(args.out, size_t(tokens) * hidden, dtype));

    // The same batch through the work-list mode, as a graph bucket launches it: a grid larger
    // than the list, and two empty padding sequences after the real ones.
    std::vector<int32_t> padded_cu = cu;
    padded_cu.push_back(tokens);
    padded_cu.push_back(tokens);
    const int slots = int(padded_cu.size()) - 1;
    const int max_tiles = MaxAttentionTiles(tokens, slots) + 3;
    AttentionArgs listed = args;
    listed.num_sequences = slots;
    listed.cu_seqlens = static_cast<const int32_t*>(env.Upload(padded_cu));
    // One run over a work list of `count` tiles, `max` of them provided for.
    auto run_list = [&](const std::vector<int32_t>& list, int count, int max,
                        const std::string& label) {
      AttentionArgs run = listed;
      run.tiles = static_cast<const int32_t*>(env.Upload(list));
      run.num_tiles = static_cast<const int32_t*>(env.Upload(std::vector<int32_t>{count}));
      run.max_tiles = max;
      run.out = env.Poisoned(size_t(tokens) * hidden * 2);
      ASSERT_TRUE(FusedAttention(run, env.stream()).ok());
      outs.emplace_back(kernel + label, env.Download16(run.out, size_t(tokens) * hidden, dtype));
    };
    std::vector<int32_t> tiles(2 * size_t(max_tiles), -1);
    const int num_tiles = AppendAttentionTiles(padded_cu.data(), slots, tiles.data());
    ASSERT_LE(num_tiles, MaxAttentionTiles(tokens, slots));
    run_list(tiles, num_tiles, max_tiles, ", work list");

    // Half (64-row) tiles, as small batches run them, and packed tiles, as passes of short
    // sequences do (head sizes up to 64): each through the general portable kernel and through
    // the one built for tiles of at most 64 rows.
    if (c.head_dim <= 64) {
      const int half_tiles = CountAttentionTiles(padded_cu.data(), slots, AttentionTiling::kHalf);
      std::vector<int32_t> half_list(2 * size_t(half_tiles), -1);
      ASSERT_EQ(
          AppendAttentionTiles(padded_cu.data(), slots, half_list.data(), AttentionTiling::kHalf),
          half_tiles);
      const int max_short = MaxAttentionTiles(tokens, slots, /*short_tiles=*/true);
      ASSERT_LE(half_tiles, max_short);
      const int packed_tiles =
          CountAttentionTiles(padded_cu.data(), slots, AttentionTiling::kPacked);
      ASSERT_LE(packed_tiles, half_tiles);
      std::vector<int32_t> packed_list(2 * size_t(max_short), -1);
      ASSERT_EQ(AppendAttentionTiles(padded_cu.data(), slots, packed_list.data(),
                                     AttentionTiling::kPacked),
                packed_tiles);
      for (const bool short_tiles : {false, true}) {
        listed.short_tiles = short_tiles;
        EXPECT_EQ(FusedAttentionUsesHopperKernel(listed),
                  hopper && !short_tiles && FusedAttentionUsesHopperKernel(args));
        const std::string kind = short_tiles ? " (short-tile kernel)" : "";
        run_list(half_list, half_tiles, half_tiles, ", half tiles" + kind);
        // Packed tiles are for the portable kernels only.
        if (!FusedAttentionUsesHopperKernel(listed)) {
          run_list(packed_list, packed_tiles, max_short, ", packed tiles" + kind);
        }
      }
      listed.short_tiles = false;
    }
  }

  std::vector<double> ref(size_t(tokens) * hidden);
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    for (int h = 0; h < c.heads; ++h) {
      for (int i = cu[s]; i < cu[s + 1]; ++i) {
        std::vector<double> scores;
        double mx = -INFINITY;
        for (int j = cu[s]; j < cu[s + 1]; ++j) {
          double dot = 0;
          for (int d = 0; d < c.head_dim; ++d) {
            dot += value(i, h * c.head_dim + d) * value(j, hidden + h * c.head_dim + d);
          }
          scores.push_back(dot / std::sqrt(double(c.head_dim)));
          mx = std::max(mx, scores.back());
        }
        double sum = 0;
        for (double& v : scores) sum += (v = std::exp(v - mx));
        for (int d = 0; d < c.head_dim; ++d) {
          double acc = 0;
          for (int j = cu[s]; j < cu[s + 1]; ++j) {
            acc += scores[j - cu[s]] * value(j, 2 * hidden + h * c.head_dim + d);
          }
          ref[size_t(i) * hidden + h * c.head_dim + d] = acc / sum;
        }
      }
    }
  }
  for (const auto& [what, values] : outs) {
    EXPECT_LT(RelativeError(values, ref), Tolerance(dtype)) << what;
  }
}

std::string AttentionName(const ::testing::TestParamInfo<std::tuple<AttentionCase, CudaDType>>& p) {
  const AttentionCase& c = std::get<0>(p.param);
  return fmt::format("len_{}_h{}_d{}{}_{}", fmt::join(c.lengths, "_"), c.heads, c.head_dim,
                     c.bias ? "_bias" : "", CudaDTypeName(std::get<1>(p.param)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedAttentionTest,
                         ::testing::Combine(::testing::ValuesIn(kAttentionCases),
                                            ::testing::ValuesIn(kDTypes)),
                         AttentionName);

TEST(FusedAttentionBadInputTest, RejectsHeadSizesNotCompiled) {
  AttentionArgs args;
  args.num_sequences = 1;
  args.max_seqlen = 4;
  args.num_heads = 1;
  args.head_dim = 48;
  EXPECT_FALSE(FusedAttentionSupportsHeadDim(48));
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
  args.head_dim = 64;
  args.num_heads = 0;
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
  args.num_heads = 1;
  const int32_t tiles[2] = {0, 0};
  args.tiles = tiles;  // a work list without its length
  args.max_tiles = 1;
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
  args.tiles = nullptr;
  args.max_tiles = 0;
  alignas(16) const uint16_t bias[16] = {};
  args.qkv_bias = bias + 1;  // the bias is copied in 16-byte pieces
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
  args.qkv_bias = nullptr;
  args.total_rows = -1;  // a row count that cannot be
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
  args.total_rows = 0;
  const int32_t count = 1;
  args.tiles = tiles;  // one block per listed tile and head: more than a grid holds
  args.num_tiles = &count;
  args.num_heads = 16;
  args.max_tiles = 1 << 27;
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
  args.max_tiles = 1;
  args.short_tiles = true;  // the short-tile kernel is built for head sizes up to 64
  args.head_dim = 128;
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
  args.head_dim = 64;  // and reads a work list
  args.tiles = nullptr;
  args.num_tiles = nullptr;
  EXPECT_EQ(FusedAttention(args, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(AttentionTilesTest, ListsEveryQueryTileOfEverySequence) {
  constexpr int T = kAttentionQueryTile;
  // Lengths 1, 0, T + 1, 2 T, 0.
  const std::vector<int32_t> cu = {0, 1, 1, T + 2, 3 * T + 2, 3 * T + 2};
  std::vector<int32_t> tiles(2 * 16, -1);
  const int n = AppendAttentionTiles(cu.data(), 5, tiles.data());
  const std::vector<int32_t> expected = {0, 0, 2, 0, 2, T, 3, 0, 3, T};
  ASSERT_EQ(n, 5);
  EXPECT_EQ(std::vector<int32_t>(tiles.begin(), tiles.begin() + 2 * n), expected);
  EXPECT_LE(n, MaxAttentionTiles(3 * T + 2, 5));
  EXPECT_EQ(MaxAttentionTiles(10, 4), 4);  // one tile per short sequence
  EXPECT_EQ(MaxAttentionTiles(3, 8), 3);   // never more tiles than tokens
  EXPECT_EQ(MaxAttentionTiles(640, 2), 640 / kAttentionQueryTile + 2);
  EXPECT_EQ(CountAttentionTiles(cu.data(), 5, AttentionTiling::kFull), 5);

  // Half tiles: 64 rows each, flagged.
  const int32_t H = kAttentionHalfTileBit;
  const int halves = AppendAttentionTiles(cu.data(), 5, tiles.data(), AttentionTiling::kHalf);
  const std::vector<int32_t> expected_halves = {0, H, 2, H,         2, H | T / 2, 2, H | T,
                                                3, H, 3, H | T / 2, 3, H | T,     3, H | 3 * T / 2};
  ASSERT_EQ(halves, 8);
  EXPECT_EQ(CountAttentionTiles(cu.data(), 5, AttentionTiling::kHalf), 8);
  EXPECT_EQ(std::vector<int32_t>(tiles.begin(), tiles.begin() + 2 * halves), expected_halves);
}

TEST(AttentionTilesTest, PacksShortSequencesIntoSharedTiles) {
  constexpr int P = kAttentionPackTokens;
  const int32_t B = kAttentionPackedBit;
  // Lengths 20, 30, 14, 1, 0, 5, P + 1, P, 3, 2, 0, 0.
  const std::vector<int> lengths = {20, 30, 14, 1, 0, 5, P + 1, P, 3, 2, 0, 0};
  std::vector<int32_t> cu{0};
  for (int len : lengths) cu.push_back(cu.back() + len);
  const int n = int(lengths.size());
  std::vector<int32_t> tiles(2 * 32, -1);
  const int count = AppendAttentionTiles(cu.data(), n, tiles.data(), AttentionTiling::kPacked);
  // Each sequence takes its length rounded up to 16 rows (20 and 30: 64; 14 and 1: 32). Groups
  // end where the next sequence would not fit or is empty; a group of one is an ordinary tile; a
  // sequence longer than P gets 64-row (half) tiles.
  const int32_t H = kAttentionHalfTileBit;
  const std::vector<int32_t> expected = {0, B | 2, 2, B | 2, 5, 0, 6, H, 6, H | P, 7, 0, 8, B | 2};
  ASSERT_EQ(count, 7);
  EXPECT_EQ(CountAttentionTiles(cu.data(), n, AttentionTiling::kPacked), 7);
  EXPECT_EQ(std::vector<int32_t>(tiles.begin(), tiles.begin() + 2 * count), expected);
  EXPECT_LE(count, CountAttentionTiles(cu.data(), n, AttentionTiling::kHalf));
  EXPECT_LE(count, MaxAttentionTiles(cu.back(), n, /*short_tiles=*/true));
  // 256 sequences of 32 tokens: two to a tile.
  std::vector<int32_t> even{0};
  for (int s = 0; s < 256; ++s) even.push_back(even.back() + 32);
  EXPECT_EQ(CountAttentionTiles(even.data(), 256, AttentionTiling::kPacked), 128);
  // Of 16 tokens, four to a tile; of 17, two (32 rows each).
  for (int s = 0; s < 256; ++s) even[s + 1] = even[s] + 16;
  EXPECT_EQ(CountAttentionTiles(even.data(), 256, AttentionTiling::kPacked), 64);
  for (int s = 0; s < 256; ++s) even[s + 1] = even[s] + 17;
  EXPECT_EQ(CountAttentionTiles(even.data(), 256, AttentionTiling::kPacked), 128);
}

// ---------------------------------------------------------------------------------------------
// PoolAndNormalize

// Widths: the 16-byte column-slice kernel (8 to 2048, a multiple of 8: several, two or one
// token per pass) and the general one (36, 2560).
class PoolingTest : public ::testing::TestWithParam<std::tuple<Pooling, int, CudaDType>> {};

TEST_P(PoolingTest, MatchesReference) {
  SLUICE_SKIP_WITHOUT_GPU();
  const auto [pooling, hidden, dtype] = GetParam();
  const uint32_t seed = testing::FreshSeed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  // The last slot is empty, as the padding slots of a graph bucket are: it pools to zeros.
  const std::vector<int> lengths = {1, 3, 20, 7, 301, 0};
  const std::vector<uint8_t> normalize = {1, 0, 1, 0, 1, 1};
  std::vector<int32_t> cu{0};
  for (int len : lengths) cu.push_back(cu.back() + len);
  const auto states = MakeRandom16(size_t(cu.back()) * hidden, dtype, rng);

  DeviceEnv env;
  PoolingArgs args;
  args.dtype = dtype;
  args.pooling = pooling;
  args.num_sequences = int(lengths.size());
  args.hidden = hidden;
  args.states = env.Upload(states.bits);
  args.cu_seqlens = static_cast<const int32_t*>(env.Upload(cu));
  args.normalize = static_cast<const uint8_t*>(env.Upload(normalize));
  args.out = static_cast<float*>(env.Poisoned(lengths.size() * hidden * sizeof(float)));
  ASSERT_TRUE(PoolAndNormalize(args, env.stream()).ok());
  const auto raw = env.Download<float>(args.out, lengths.size() * hidden);
  const std::vector<double> out(raw.begin(), raw.end());

  std::vector<double> ref;
  for (size_t s = 0; s < lengths.size(); ++s) {
    std::vector<double> v(hidden, 0.0);
    for (int i = 0; i < hidden && lengths[s] > 0; ++i) {
      auto at = [&](int t) { return states.values[size_t(t) * hidden + i]; };
      double acc = pooling == Pooling::kMax ? -INFINITY : 0.0;
      for (int t = cu[s]; t < cu[s + 1]; ++t) {
        acc = pooling == Pooling::kMax ? std::max(acc, at(t)) : acc + at(t);
      }
      switch (pooling) {
        case Pooling::kCls:
          v[i] = at(cu[s]);
          break;
        case Pooling::kLastToken:
          v[i] = at(cu[s + 1] - 1);
          break;
        case Pooling::kMax:
          v[i] = acc;
          break;
        case Pooling::kMean:
          v[i] = acc / lengths[s];
          break;
        case Pooling::kMeanSqrtLen:
          v[i] = acc / std::sqrt(double(lengths[s]));
          break;
      }
    }
    if (normalize[s] && lengths[s] > 0) {
      double norm = 0;
      for (double x : v) norm += x * x;
      for (double& x : v) x /= std::sqrt(norm);
    }
    ref.insert(ref.end(), v.begin(), v.end());
  }
  // Float32 arithmetic over exact 16-bit inputs.
  EXPECT_LT(RelativeError(out, ref), 1e-5);
  for (size_t s = 0; s < lengths.size(); ++s) {
    if (!normalize[s] || lengths[s] == 0) continue;
    double norm = 0;
    for (int i = 0; i < hidden; ++i) norm += out[s * hidden + i] * out[s * hidden + i];
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
  }
}

std::string PoolingName(const ::testing::TestParamInfo<std::tuple<Pooling, int, CudaDType>>& p) {
  static const char* kNames[] = {"cls", "mean", "max", "mean_sqrt_len", "last"};
  return fmt::format("{}_w{}_{}", kNames[static_cast<int>(std::get<0>(p.param))],
                     std::get<1>(p.param), CudaDTypeName(std::get<2>(p.param)));
}

INSTANTIATE_TEST_SUITE_P(Modes, PoolingTest,
                         ::testing::Combine(::testing::Values(Pooling::kCls, Pooling::kMean,
                                                              Pooling::kMax, Pooling::kMeanSqrtLen,
                                                              Pooling::kLastToken),
                                            ::testing::Values(8, 384, 768, 2048, 36, 2560),
                                            ::testing::ValuesIn(kDTypes)),
                         PoolingName);

TEST(PoolingBadInputTest, RejectsZeroWidth) {
  PoolingArgs args;
  args.num_sequences = 1;
  args.hidden = 0;
  EXPECT_EQ(PoolAndNormalize(args, nullptr).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::cuda
