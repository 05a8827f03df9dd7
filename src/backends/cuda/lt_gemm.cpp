#include "backends/cuda/lt_gemm.h"

#include <fmt/format.h>

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

}  // namespace

size_t LtGemm::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<int64_t>()(k.rows);
  h = h * 31 + std::hash<int64_t>()(k.in_features);
  h = h * 31 + std::hash<int64_t>()(k.out_features);
  h = h * 31 + static_cast<size_t>(k.dtype) * 7 + static_cast<size_t>(k.epilogue);
  return h;
}

LtGemm::Plan::~Plan() {
  if (d != nullptr) static_cast<void>(cublasLtMatrixLayoutDestroy(d));
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

StatusOr<LtGemm::Plan*> LtGemm::GetPlan(const Key& key, const LinearArgs& args,
                                        cudaStream_t stream) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  if (plans_.size() >= kMaxPlans) plans_.clear();

  auto plan = std::make_unique<Plan>();
  const cudaDataType_t type = ToCudaType(key.dtype);
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
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
      cublasLtMatrixLayoutCreate(&plan->a, type, k, n, static_cast<int64_t>(k)));
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatrixLayoutCreate(&plan->b, type, k, m, static_cast<int64_t>(k)));
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatrixLayoutCreate(&plan->d, type, n, m, static_cast<int64_t>(n)));

  cublasLtMatmulHeuristicResult_t results[kTuneCandidates]{};
  int found = 0;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  SLUICE_CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(stream, &capture));
  const bool tune = autotune_ && capture == cudaStreamCaptureStatusNone;
  SLUICE_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatmulAlgoGetHeuristic(handle_, plan->desc, plan->a, plan->b, plan->d, plan->d,
                                     preference_, tune ? kTuneCandidates : 1, results, &found));
  if (found == 0) {
    return Unimplemented(fmt::format("cuBLASLt has no algorithm for {} [{} x {}] * [{} x {}]^T",
                                     CudaDTypeName(key.dtype), key.rows, key.in_features,
                                     key.out_features, key.in_features));
  }
  int best = 0;
  if (tune && found > 1) {
    SLUICE_ASSIGN_OR_RETURN(best, TimeCandidates(*plan, results, found, args, stream));
  }
  const cublasLtMatmulHeuristicResult_t& result = results[best];
  plan->algo = result.algo;
  Plan* raw = plan.get();
  plans_.emplace(key, std::move(plan));
  return raw;
}

StatusOr<int> LtGemm::TimeCandidates(Plan& plan, const cublasLtMatmulHeuristicResult_t* results,
                                     int count, const LinearArgs& args, cudaStream_t stream) {
  SLUICE_ASSIGN_OR_RETURN(CudaEvent start, CudaEvent::Create());
  SLUICE_ASSIGN_OR_RETURN(CudaEvent stop, CudaEvent::Create());
  constexpr int kReps = 3;
  int best = 0;
  float best_ms = -1.0f;
  for (int i = 0; i < count; ++i) {
    // A candidate the library lists but cannot run on these operands is skipped.
    if (!Enqueue(plan, results[i].algo, args, stream).ok()) continue;
    SLUICE_RETURN_IF_ERROR(start.Record(stream));
    Status run = Status::Ok();
    for (int r = 0; r < kReps && run.ok(); ++r) run = Enqueue(plan, results[i].algo, args, stream);
    SLUICE_RETURN_IF_ERROR(stop.Record(stream));
    SLUICE_ASSIGN_OR_RETURN(float ms, stop.ElapsedMsSince(start));
    if (run.ok() && (best_ms < 0.0f || ms < best_ms)) {
      best = i;
      best_ms = ms;
    }
  }
  return best;
}

Status LtGemm::Enqueue(Plan& plan, const cublasLtMatmulAlgo_t& algo, const LinearArgs& args,
                       cudaStream_t stream) {
  if (args.epilogue != GemmEpilogue::kNone) {
    // The bias pointer changes per layer; the descriptor is read when the call is enqueued.
    SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &args.bias, sizeof(args.bias)));
  }
  const float alpha = 1.0f;
  const float beta = 0.0f;
  SLUICE_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, plan.desc, &alpha, args.w, plan.a, args.x,
                                               plan.b, &beta, args.y, plan.d, args.y, plan.d, &algo,
                                               workspace_, workspace_bytes_, stream));
  return Status::Ok();
}

Status LtGemm::Linear(const LinearArgs& args, cudaStream_t stream) {
  if (args.rows <= 0 || args.in_features <= 0 || args.out_features <= 0) {
    return InvalidArgument(fmt::format("linear layer with non-positive size [{} x {}] -> {}",
                                       args.rows, args.in_features, args.out_features));
  }
  if (args.x == nullptr || args.w == nullptr || args.y == nullptr ||
      (args.epilogue != GemmEpilogue::kNone && args.bias == nullptr)) {
    return InvalidArgument("linear layer with a missing operand");
  }
  const Key key{args.dtype, args.epilogue, args.rows, args.in_features, args.out_features};
  SLUICE_ASSIGN_OR_RETURN(Plan * plan, GetPlan(key, args, stream));
  return Enqueue(*plan, plan->algo, args, stream);
}

}  // namespace sluice::cuda
