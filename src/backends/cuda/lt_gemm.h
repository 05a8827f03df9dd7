// LtGemm: the linear layers of the encoder on cuBLASLt. Computes Y = X * W^T (+ bias, then an
// optional activation) with X [rows, in] and Y [rows, out] row-major and W in PyTorch layout
// [out, in], fp16 or bf16 operands with float32 accumulation. One algorithm is chosen per
// shape and cached, so steady-state calls only enqueue: the heuristic's first choice, or with
// autotuning the fastest of its first few candidates (and, optionally, of their other custom
// options), timed on the first call's operands.
//
// Thread-safety: one thread at a time (the backend's engine thread).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cuda/cuda_dtype.h"
#include "common/status.h"

namespace sluice::cuda {

enum class GemmEpilogue {
  kNone,
  kBias,
  kBiasGelu,  // cuBLASLt's GELU (tanh approximation) after the bias
  kBiasRelu,
};

struct LinearArgs {
  CudaDType dtype = CudaDType::kF16;
  int64_t rows = 0;            // tokens
  int64_t in_features = 0;     // k
  int64_t out_features = 0;    // n
  const void* x = nullptr;     // [rows, in_features]
  const void* w = nullptr;     // [out_features, in_features]
  const void* bias = nullptr;  // [out_features]; required unless epilogue is kNone
  void* y = nullptr;           // [rows, out_features]
  GemmEpilogue epilogue = GemmEpilogue::kNone;
  // Optional [rows, out_features], added in float32 before the bias and activation (cuBLASLt's
  // C operand with beta 1): a residual connection for free in the epilogue. May equal y (such
  // a shape is not autotuned, since timing would add the residual again on every run).
  const void* residual = nullptr;
  // fp8 mode: x and w are E4M3 (w's values divided by *w_scale, a 16-byte aligned device
  // float32; x unscaled),
  // bias and residual stay in `dtype`, and y is E4M3 (unscaled, saturating) when y_fp8 is set,
  // else `dtype`. Only fp16 `dtype` is supported. fast_accum trades accuracy for speed: the
  // tensor cores' partial sums are not promoted to float32 along k.
  bool fp8 = false;
  const float* w_scale = nullptr;
  bool y_fp8 = false;
  bool fast_accum = false;
  // With y_fp8: a device buffer other than x, w and y, never read (cuBLASLt wants a C operand
  // of the 16-bit type apart from the fp8 D).
  const void* c_unused = nullptr;
};

// One cuBLASLt algorithm timed on a shape (LtGemm::TimeCandidates).
struct GemmCandidate {
  int index = 0;        // place in the list: the heuristic's order, custom-option variants after
  float ms = 0.0f;      // per call (median of three timings); negative: failed to run
  std::string config;   // tile, stages, split-K, swizzle, cluster ids as cuBLASLt numbers them
  bool chosen = false;  // the plan Linear() uses for this shape
};

class LtGemm {
 public:
  // `workspace` (device memory, `workspace_bytes` long) is lent to cuBLASLt for every call;
  // it must outlive this object and be used by no one else.
  static StatusOr<std::unique_ptr<LtGemm>> Create(cublasLtHandle_t handle, void* workspace,
                                                  size_t workspace_bytes);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Enqueues one product on `stream`. InvalidArgument for non-positive sizes or missing
  // pointers; Unimplemented when cuBLASLt has no algorithm for the shape.
  Status Linear(const LinearArgs& args, cudaStream_t stream);

  size_t cached_plans() const { return plans_.size(); }
  // One line per cached plan: its shape, epilogue and the algorithm chosen (benchmarking).
  std::vector<std::string> DescribePlans() const;
  // When on, a shape seen for the first time outside stream capture is timed with up to
  // tune_candidates() algorithms (a few milliseconds per shape) before its plan is cached.
  void set_autotune(bool on) { autotune_ = on; }
  void set_tune_candidates(int n) {
    tune_candidates_ = n < 1 ? 1 : n > kMaxCandidates ? kMaxCandidates : n;
  }
  int tune_candidates() const { return tune_candidates_; }
  // With autotuning, for shapes of at least `min_rows` rows: also time each candidate under its
  // algorithm's other custom options (those cublasLtMatmulAlgoCheck accepts for the shape).
  // The heuristic lists few of them, and for an epilogue it may leave out the fastest: the
  // bias + GELU epilogue of BERT-base's feed-forward input at 32768 rows runs 15% faster under
  // a custom option it does not list.
  void set_tune_custom_options(bool on, int64_t min_rows = 0) {
    tune_custom_ = on;
    tune_custom_min_rows_ = min_rows;
  }
  // Once on, a shape seen for the first time takes, without timing, the algorithm autotuning
  // chose for a shape that differs only in rows, with its row count rounding up to the same
  // power of two, when cublasLtMatmulAlgoCheck accepts it for the new rows. The backend turns
  // it on after warm-up, so that eager passes of new token counts (every multiple of 256
  // above the graph buckets) do not stop to time tens of algorithms each.
  void set_reuse_tuning(bool on) { reuse_tuning_ = on; }
  // Shapes planned by autotuning so far (their candidates timed, each a dozen times, when the
  // heuristic offers more than one); not those that reused a class's choice.
  size_t tuned_shapes() const { return tuned_shapes_; }
  static constexpr int kMaxCandidates = 64;

  // Benchmarking: times the algorithms autotuning would weigh for `args`'s shape with up to
  // `max_candidates` of the heuristic's (median of three timings of `reps` calls each, after
  // one untimed call; overwrites args.y) and marks the one Linear() would use (planning the
  // shape if needed). Outside stream capture only.
  StatusOr<std::vector<GemmCandidate>> TimeCandidates(const LinearArgs& args, cudaStream_t stream,
                                                      int max_candidates, int reps);
  // Testing: enqueues the product with each algorithm TimeCandidates would time, calling
  // `check(config)` after each one (which may synchronize and read args.y); stops at the first
  // error either returns.
  Status ForEachCandidate(const LinearArgs& args, cudaStream_t stream, int max_candidates,
                          const std::function<Status(const std::string& config)>& check);

 private:
  struct Key {
    CudaDType dtype;
    GemmEpilogue epilogue;
    bool residual;
    bool fp8, y_fp8, fast_accum;
    int64_t rows, in_features, out_features;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  // Descriptors and the chosen algorithm for one shape.
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    Plan() = default;
    Plan(const Plan&) = delete;
    Plan& operator=(const Plan&) = delete;
    ~Plan();
  };
  // Bounds the cache when batch sizes vary widely; a rebuild costs one heuristic query.
  static constexpr size_t kMaxPlans = 4096;
  // Back-to-back calls per timing when autotuning (the median of three timings counts).
  static constexpr int kTuneReps = 4;

  LtGemm(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes)
      : handle_(handle), workspace_(workspace), workspace_bytes_(workspace_bytes) {}
  StatusOr<Plan*> GetPlan(const Key& key, const LinearArgs& args, cudaStream_t stream);
  static Status CheckArgs(const LinearArgs& args);
  static Key KeyOf(const LinearArgs& args);
  // `key` with its rows rounded up to a power of two: the class whose tuning a shape may reuse.
  static Key ClassOf(Key key);
  bool TuneCustomFor(const Key& key) const {
    return tune_custom_ && key.rows >= tune_custom_min_rows_;
  }
  // Descriptors for `key` (no algorithm yet; `args` lends the fp8 weight scale the heuristic
  // needs to see).
  Status Describe(const Key& key, const LinearArgs& args, Plan* plan) const;
  // Whether cublasLtMatmulAlgoCheck accepts `algo` for `plan`'s shape within our workspace.
  bool Fits(const Plan& plan, const cublasLtMatmulAlgo_t& algo) const;
  // Up to `count` of the heuristic's algorithms for `plan`, each followed by its variants
  // under other custom options when `custom` is set (deduplicated, checked for the shape and
  // the workspace).
  StatusOr<std::vector<cublasLtMatmulAlgo_t>> Candidates(const Plan& plan, int count,
                                                         bool custom) const;
  // Enqueues the product with `plan`'s descriptors and `algo`.
  Status Enqueue(Plan& plan, const cublasLtMatmulAlgo_t& algo, const LinearArgs& args,
                 cudaStream_t stream);
  // Milliseconds per call of each of `algos` on `args` (which it overwrites): the median of
  // three timings of `reps` back-to-back calls, the algorithms taking turns from one timing to
  // the next so that a clock still rising favours none; negative for an algorithm that fails
  // to run.
  StatusOr<std::vector<float>> TimeAlgos(Plan& plan, const std::vector<cublasLtMatmulAlgo_t>& algos,
                                         const LinearArgs& args, cudaStream_t stream, int reps);

  cublasLtHandle_t handle_;
  void* workspace_;
  size_t workspace_bytes_;
  bool autotune_ = false;
  int tune_candidates_ = 8;
  bool tune_custom_ = false;
  int64_t tune_custom_min_rows_ = 0;
  cublasLtMatmulPreference_t preference_ = nullptr;
  std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans_;
  bool reuse_tuning_ = false;
  size_t tuned_shapes_ = 0;
  // The algorithm autotuning last chose in each class (ClassOf).
  std::unordered_map<Key, cublasLtMatmulAlgo_t, KeyHash> tuned_;
};

}  // namespace sluice::cuda
