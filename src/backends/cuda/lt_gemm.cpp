#include "backends/cuda/lt_gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>

#include "backends/cuda/cuda_handles.h"
#include "backends/cuda/cuda_status.h"

namespace sluice::cuda {
namespace {

cudaDataType_t ToCudaType(CudaDType dtype) {
  return dtype == CudaDType::kF16 ? CUDA_R_16F : CUDA_R_16BF;
}

cublasLtEpilogue_t ToLtEpilogue(GemmEpilogue epilogue) {
  switch (epilogue) {
    case GemmEpilogue::kNone:
      return CUBLASLT_EPILOGUE_DEFAULT;
    case GemmEpilogue::kBias:
      return CUBLASLT_EPILOGUE_BIAS;
    case GemmEpilogue::kBiasGelu:
      return CUBLASLT_EPILOGUE_GELU_BIAS;
    case GemmEpilogue::kBiasRelu:
      return CUBLASLT_EPILOGUE_RELU_BIAS;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

template <typename V>
long AlgoAttribute(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  V v{};
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written) !=
      CUBLAS_STATUS_SUCCESS) {
    return -1;
  }
  return static_cast<long>(v);
}

std::string DescribeAlgo(const cublasLtMatmulAlgo_t& algo) {
  return fmt::format(
      "id {} tile {} stages {} splitk {} reduction {} swizzle {} custom {} inner {} cluster {}",
      AlgoAttribute<int32_t>(algo, CUBLASLT_ALGO_CONFIG_ID),
      AlgoAttribute<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_TILE_ID),
      AlgoAttribute<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID),
      AlgoAttribute<int32_t>(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
      AlgoAttribute<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
      AlgoAttribute<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
      AlgoAttribute<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION),
      AlgoAttribute<uint16_t>(algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID),
      AlgoAttribute<uint16_t>(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
}

}  // namespace

size_t LtGemm::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<int64_t>()(k.rows);
  h = h * 31 + std::hash<int64_t>()(k.in_features);
  h = h * 31 + std::hash<int64_t>()(k.out_features);
  h = h * 31 + static_cast<size_t>(k.dtype) * 7 + static_cast<size_t>(k.epilogue) * 2 +
      (k.residual ? 1 : 0);
  h = h * 31 + (k.fp8 ? 4 : 0) + (k.y_fp8 ? 2 : 0) + (k.fast_accum ? 1 : 0);
  return h;
}

LtGemm::Plan::~Plan() {
  if (d != nullptr) static_cast<void>(cublasLtMatrixLayoutDestroy(d));
  if (c != nullptr) static_cast<void>(cublasLtMatrixLayoutDestroy(c));
  if (b != nullptr) static_cast<void>(cublasLtMatrixLayoutDestroy(b));
  if (a != nullptr) static_cast<void>(cublasLtMatrixLayoutDestroy(a));
  if (desc != nullptr) static_cast<void>(cublasLtMatmulDescDestroy(desc));
}

StatusOr<std::unique_ptr<LtGemm>> LtGemm::Create(cublasLtHandle_t handle, void* workspace,
                                                 size_t workspace_bytes) {
  std::unique_ptr<LtGemm> gemm(new LtGemm(handle, workspace, workspace_bytes));
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&gemm->preference_));
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      gemm->preference_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &gemm->workspace_bytes_,
      sizeof(gemm->workspace_bytes_)));
  return gemm;
}

LtGemm::~LtGemm() {
  plans_.clear();
  if (preference_ != nullptr) static_cast<void>(cublasLtMatmulPreferenceDestroy(preference_));
}

Status LtGemm::Describe(const Key& key, const LinearArgs& args, Plan* plan) const {
  const cudaDataType_t type = ToCudaType(key.dtype);
  const cudaDataType_t in_type = key.fp8 ? CUDA_R_8F_E4M3 : type;
  const cudaDataType_t out_type = key.y_fp8 ? CUDA_R_8F_E4M3 : type;
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  if (key.fp8) {
    const int8_t fast = key.fast_accum ? 1 : 0;
    SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
  }
  // Column-major view: Y^T [out, rows] = W [out, in] (stored as [in, out]) transposed times
  // X^T [in, rows]. Row-major [rows, out] output then needs no copy.
  const cublasOperation_t trans_a = CUBLAS_OP_T;
  const cublasOperation_t trans_b = CUBLAS_OP_N;
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
  const cublasLtEpilogue_t epilogue = ToLtEpilogue(key.epilogue);
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
  if (key.epilogue != GemmEpilogue::kNone) {
    const cudaDataType_t bias_type = type;
    SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  const auto k = static_cast<uint64_t>(key.in_features);
  const auto n = static_cast<uint64_t>(key.out_features);
  const auto m = static_cast<uint64_t>(key.rows);
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatrixLayoutCreate(&plan->a, in_type, k, n, static_cast<int64_t>(k)));
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatrixLayoutCreate(&plan->b, in_type, k, m, static_cast<int64_t>(k)));
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatrixLayoutCreate(&plan->c, type, n, m, static_cast<int64_t>(n)));
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatrixLayoutCreate(&plan->d, out_type, n, m, static_cast<int64_t>(n)));
  if (key.fp8) {
    // The heuristic only offers algorithms that take a scale when one is set; Enqueue sets the
    // call's own pointer again.
    SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &args.w_scale, sizeof(args.w_scale)));
  }
  return Status::Ok();
}

bool LtGemm::Fits(const Plan& plan, const cublasLtMatmulAlgo_t& algo) const {
  cublasLtMatmulHeuristicResult_t checked{};
  return cublasLtMatmulAlgoCheck(handle_, plan.desc, plan.a, plan.b, plan.c, plan.d, &algo,
                                 &checked) == CUBLAS_STATUS_SUCCESS &&
         checked.workspaceSize <= workspace_bytes_;
}

StatusOr<std::vector<cublasLtMatmulAlgo_t>> LtGemm::Candidates(const Plan& plan, int count,
                                                               bool custom) const {
  cublasLtMatmulHeuristicResult_t results[kMaxCandidates]{};
  int found = 0;
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulAlgoGetHeuristic(
      handle_, plan.desc, plan.a, plan.b, plan.c, plan.d, preference_,
      std::clamp(count, 1, kMaxCandidates), results, &found));
  std::vector<cublasLtMatmulAlgo_t> out;
  const auto add = [&out](const cublasLtMatmulAlgo_t& algo) {
    for (const cublasLtMatmulAlgo_t& seen : out) {
      if (std::memcmp(&seen, &algo, sizeof(algo)) == 0) return;
    }
    out.push_back(algo);
  };
  for (int i = 0; i < found; ++i) add(results[i].algo);
  if (!custom) return out;
  for (int i = 0; i < found; ++i) {
    int32_t max_option = 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(&results[i].algo, CUBLASLT_ALGO_CAP_CUSTOM_OPTION_MAX,
                                          &max_option, sizeof(max_option),
                                          &written) != CUBLAS_STATUS_SUCCESS) {
      continue;
    }
    for (uint32_t option = 0; option <= static_cast<uint32_t>(std::clamp(max_option, 0, 31));
         ++option) {
      cublasLtMatmulAlgo_t algo = results[i].algo;
      if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &option,
                                               sizeof(option)) == CUBLAS_STATUS_SUCCESS &&
          Fits(plan, algo)) {
        add(algo);
      }
    }
  }
  return out;
}

StatusOr<LtGemm::Plan*> LtGemm::GetPlan(const Key& key, const LinearArgs& args,
                                        cudaStream_t stream) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  if (plans_.size() >= kMaxPlans) plans_.clear();

  auto plan = std::make_unique<Plan>();
  SLUICE_RETURN_IF_ERROR(Describe(key, args, plan.get()));
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(stream, &capture));
  // Timing runs the product several times on the caller's operands: in place over the residual
  // that would add it again each time, so such a shape takes the heuristic's first choice.
  const bool in_place = args.residual != nullptr && args.residual == args.y;
  const bool tune = autotune_ && capture == cudaStreamCaptureStatusNone && !in_place;
  const auto tuned = tune && reuse_tuning_ ? tuned_.find(ClassOf(key)) : tuned_.end();
  if (tuned != tuned_.end() && Fits(*plan, tuned->second)) {
    plan->algo = tuned->second;
  } else {
    SLUICE_ASSIGN_OR_RETURN(
        const std::vector<cublasLtMatmulAlgo_t> algos,
        Candidates(*plan, tune ? tune_candidates_ : 1, tune && TuneCustomFor(key)));
    if (algos.empty()) {
      return Unimplemented(fmt::format("cuBLASLt has no algorithm for {} [{} x {}] * [{} x {}]^T",
                                       CudaDTypeName(key.dtype), key.rows, key.in_features,
                                       key.out_features, key.in_features));
    }
    size_t best = 0;
    if (tune && algos.size() > 1) {
      SLUICE_ASSIGN_OR_RETURN(const std::vector<float> ms,
                              TimeAlgos(*plan, algos, args, stream, kTuneReps));
      for (size_t i = 0; i < algos.size(); ++i) {
        if (ms[i] >= 0.0f && (ms[best] < 0.0f || ms[i] < ms[best])) best = i;
      }
    }
    if (tune) {
      ++tuned_shapes_;
      tuned_[ClassOf(key)] = algos[best];
    }
    plan->algo = algos[best];
  }
  Plan* raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

StatusOr<std::vector<float>> LtGemm::TimeAlgos(Plan& plan,
                                               const std::vector<cublasLtMatmulAlgo_t>& algos,
                                               const LinearArgs& args, cudaStream_t stream,
                                               int reps) {
  SLUICE_ASSIGN_OR_RETURN(CudaEvent start, CudaEvent::Create());
  SLUICE_ASSIGN_OR_RETURN(CudaEvent stop, CudaEvent::Create());
  constexpr int kTrials = 3;
  // A candidate the library lists but cannot run on these operands is left out.
  std::vector<bool> runs(algos.size());
  for (size_t i = 0; i < algos.size(); ++i) runs[i] = Enqueue(plan, algos[i], args, stream).ok();
  std::vector<std::vector<float>> trials(algos.size());
  for (int t = 0; t < kTrials; ++t) {
    for (size_t i = 0; i < algos.size(); ++i) {
      if (!runs[i]) continue;
      // Back-to-back calls between two events, so short products are not timed as launch gaps.
      SLUICE_RETURN_IF_ERROR(start.Record(stream));
      Status run = Status::Ok();
      for (int r = 0; r < reps && run.ok(); ++r) run = Enqueue(plan, algos[i], args, stream);
      SLUICE_RETURN_IF_ERROR(stop.Record(stream));
      SLUICE_ASSIGN_OR_RETURN(float ms, stop.ElapsedMsSince(start));
      runs[i] = run.ok();
      trials[i].push_back(ms / static_cast<float>(reps));
    }
  }
  std::vector<float> out(algos.size(), -1.0f);
  for (size_t i = 0; i < algos.size(); ++i) {
    if (!runs[i]) continue;
    std::sort(trials[i].begin(), trials[i].end());
    out[i] = trials[i][kTrials / 2];
  }
  return out;
}

StatusOr<std::vector<GemmCandidate>> LtGemm::TimeCandidates(const LinearArgs& args,
                                                            cudaStream_t stream, int max_candidates,
                                                            int reps) {
  SLUICE_RETURN_IF_ERROR(CheckArgs(args));
  const Key key = KeyOf(args);
  SLUICE_ASSIGN_OR_RETURN(Plan * chosen, GetPlan(key, args, stream));
  Plan plan;
  SLUICE_RETURN_IF_ERROR(Describe(key, args, &plan));
  SLUICE_ASSIGN_OR_RETURN(const std::vector<cublasLtMatmulAlgo_t> algos,
                          Candidates(plan, max_candidates, TuneCustomFor(key)));
  SLUICE_ASSIGN_OR_RETURN(const std::vector<float> ms,
                          TimeAlgos(plan, algos, args, stream, std::max(reps, 1)));
  std::vector<GemmCandidate> out;
  for (size_t i = 0; i < algos.size(); ++i) {
    GemmCandidate c;
    c.index = static_cast<int>(i);
    c.ms = ms[i];
    c.config = DescribeAlgo(algos[i]);
    c.chosen = std::memcmp(&algos[i], &chosen->algo, sizeof(cublasLtMatmulAlgo_t)) == 0;
    out.push_back(std::move(c));
  }
  return out;
}

Status LtGemm::ForEachCandidate(const LinearArgs& args, cudaStream_t stream, int max_candidates,
                                const std::function<Status(const std::string& config)>& check) {
  SLUICE_RETURN_IF_ERROR(CheckArgs(args));
  const Key key = KeyOf(args);
  Plan plan;
  SLUICE_RETURN_IF_ERROR(Describe(key, args, &plan));
  SLUICE_ASSIGN_OR_RETURN(const std::vector<cublasLtMatmulAlgo_t> algos,
                          Candidates(plan, max_candidates, TuneCustomFor(key)));
  for (const cublasLtMatmulAlgo_t& algo : algos) {
    const std::string config = DescribeAlgo(algo);
    Status run = Enqueue(plan, algo, args, stream);
    if (!run.ok()) return run.WithContext(config);
    SLUICE_RETURN_IF_ERROR(check(config));
  }
  return Status::Ok();
}

std::vector<std::string> LtGemm::DescribePlans() const {
  std::vector<std::string> out;
  for (const auto& [key, plan] : plans_) {
    out.push_back(fmt::format("{} {} x {} -> {} epilogue {}{}{}: {}", CudaDTypeName(key.dtype),
                              key.rows, key.in_features, key.out_features,
                              static_cast<int>(key.epilogue), key.residual ? " residual" : "",
                              key.fp8 ? " fp8" : "", DescribeAlgo(plan->algo)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status LtGemm::Enqueue(Plan& plan, const cublasLtMatmulAlgo_t& algo, const LinearArgs& args,
                       cudaStream_t stream) {
  if (args.epilogue != GemmEpilogue::kNone) {
    // The bias pointer changes per layer; the descriptor is read when the call is enqueued.
    SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &args.bias, sizeof(args.bias)));
  }
  if (args.fp8) {
    SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &args.w_scale, sizeof(args.w_scale)));
  }
  const float alpha = 1.0f;
  const float beta = args.residual != nullptr ? 1.0f : 0.0f;
  // With beta 0, C is never read; an E4M3 output still needs a C of its own.
  const void* c = args.residual != nullptr ? args.residual : args.y_fp8 ? args.c_unused : args.y;
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, plan.desc, &alpha, args.w, plan.a, args.x,
                                               plan.b, &beta, c, plan.c, args.y, plan.d, &algo,
                                               workspace_, workspace_bytes_, stream));
  return Status::Ok();
}

Status LtGemm::CheckArgs(const LinearArgs& args) {
  if (args.rows <= 0 || args.in_features <= 0 || args.out_features <= 0) {
    return InvalidArgument(fmt::format("linear layer with non-positive size [{} x {}] -> {}",
                                       args.rows, args.in_features, args.out_features));
  }
  if (args.x == nullptr || args.w == nullptr || args.y == nullptr ||
      (args.epilogue != GemmEpilogue::kNone && args.bias == nullptr)) {
    return InvalidArgument("linear layer with a missing operand");
  }
  if (args.fp8 && (args.w_scale == nullptr || args.dtype != CudaDType::kF16 ||
                   reinterpret_cast<uintptr_t>(args.w_scale) % 16 != 0)) {
    return InvalidArgument(
        "an fp8 linear layer needs a 16-byte aligned weight scale and fp16 bias and output");
  }
  if (args.y_fp8 && args.c_unused == nullptr) {
    return InvalidArgument("an fp8-output linear layer needs a placeholder C buffer");
  }
  if (!args.fp8 && (args.y_fp8 || args.fast_accum)) {
    return InvalidArgument("fp8 output or fast accumulation without fp8 inputs");
  }
  if (args.fp8 && (args.in_features % 16 != 0 || args.out_features % 16 != 0)) {
    return InvalidArgument(
        fmt::format("fp8 linear layers need sizes that are multiples of 16, "
                    "not {} -> {}",
                    args.in_features, args.out_features));
  }
  return Status::Ok();
}

LtGemm::Key LtGemm::ClassOf(Key key) {
  key.rows = static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(key.rows)));
  return key;
}

LtGemm::Key LtGemm::KeyOf(const LinearArgs& args) {
  return Key{args.dtype,      args.epilogue, args.residual != nullptr, args.fp8,         args.y_fp8,
             args.fast_accum, args.rows,     args.in_features,         args.out_features};
}

Status LtGemm::Linear(const LinearArgs& args, cudaStream_t stream) {
  SLUICE_RETURN_IF_ERROR(CheckArgs(args));
  const Key key = KeyOf(args);
  SLUICE_ASSIGN_OR_RETURN(Plan * plan, GetPlan(key, args, stream));
  Status status = Enqueue(*plan, plan->algo, args, stream);
  if (!status.ok() && args.fp8) {
    return status.WithContext(fmt::format("fp8 linear [{} x {}] -> {}{}", args.rows,
                                          args.in_features, args.out_features,
                                          args.y_fp8 ? " (fp8 output)" : ""));
  }
  return status;
}

}  // namespace sluice::cuda
