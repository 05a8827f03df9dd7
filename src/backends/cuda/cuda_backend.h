// CudaBackend: an encoder (BERT family) on one GPU. Weights live on the device in fp16 or bf16
// (Q/K/V fused); a forward pass is cuBLASLt GEMMs with fused epilogues plus fused kernels for
// embedding+LayerNorm, residual+LayerNorm, padding-free attention and pooling.
//
// Small batches are padded to a token-count bucket whose whole forward pass was captured as a
// CUDA graph at Warmup() (one launch per batch); larger ones run eagerly on their own shape.
// Two input/output slots with pinned host buffers, a copy stream and a compute stream let the
// host pack and upload batch N+1 while the GPU runs batch N (Submit/Collect).
//
// Thread-safety: as Backend. Health() may be called from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/cuda_dtype.h"
#include "backends/cuda/cuda_handles.h"
#include "backends/cuda/device_arena.h"
#include "backends/cuda/device_weights.h"
#include "backends/cuda/lt_gemm.h"
#include "engine/backend.h"
#include "engine/encoder_config.h"
#include "engine/encoder_weights.h"
#include "engine/pooling.h"

namespace sluice::cuda {

struct CudaBackendOptions {
  int device = 0;
  CudaDType dtype = CudaDType::kF16;
  // Most device memory this backend may take (weights and workspaces); 0: what is free.
  size_t gpu_memory_limit = 0;
  // Buckets up to this many tokens are captured as CUDA graphs at Warmup(); 0: no graphs.
  size_t graph_max_tokens = 16384;
  // Time a few cuBLASLt algorithms for each new GEMM shape and keep the fastest.
  bool autotune_gemms = true;
  // How many of the heuristic's algorithms autotuning times per shape.
  int gemm_tune_candidates = 8;
  // For GEMMs of at least gemm_tune_custom_min_rows rows, autotuning also times those
  // algorithms under their other custom options (LtGemm::set_tune_custom_options): a few
  // hundred milliseconds more warm-up per shape. Measured faster at 32768 rows and more, not
  // at 8192.
  bool gemm_tune_custom_options = true;
  int64_t gemm_tune_custom_min_rows = 16384;
  // Add the residual in the output projections' GEMM epilogue (cuBLASLt's C operand) so the
  // LayerNorm after them reads one tensor instead of two.
  bool residual_in_gemm = false;
  // Add the output projections' biases in the LayerNorm after them rather than in the GEMM
  // epilogue (a GEMM with no epilogue runs faster).
  bool out_bias_in_layernorm = true;
  // Leave the Q/K/V bias out of the fused projection's GEMM; attention applies it exactly.
  bool qkv_bias_in_attention = true;
  // On Hopper GPUs, the warp-specialized attention kernel for head size 64, and 32 with an even
  // number of heads (else the portable mma.sync kernel).
  bool hopper_attention = true;
  // fp8 GEMMs (needs fp16 `dtype` and an sm_89+ GPU): the QKV and feed-forward projections take
  // E4M3 weights (one scale per tensor) and E4M3 activations; attention, LayerNorms, the
  // residual stream and the attention output projection stay in fp16.
  bool fp8_gemms = false;
  // With fp8_gemms: let the tensor cores accumulate without float32 promotion (faster, less
  // accurate).
  bool fp8_fast_accum = false;
};

// GPU time of one kind of op in a forward pass (CudaBackend::ProfileForward).
struct OpTime {
  std::string op;
  int calls = 0;    // launches per forward pass
  double ms = 0.0;  // summed over those launches; median over the repeats
};

class CudaBackend final : public Backend {
 public:
  // Uploads `weights` to the GPU. Unavailable when no usable GPU or memory is there,
  // InvalidArgument for a bad device index or weights that do not match `config`,
  // Unimplemented for architectures the kernels do not cover (head size, activation).
  static StatusOr<std::unique_ptr<CudaBackend>> Create(const EncoderConfig& config,
                                                       const EncoderWeights& weights,
                                                       Pooling pooling,
                                                       const CudaBackendOptions& options);
  ~CudaBackend() override;

  std::string name() const override;
  int embedding_dim() const override { return config_.hidden_size; }
  Status Health() const override;
  Status Warmup(const BatchLimits& limits) override;
  Status Embed(const Batch& batch, std::vector<float>* out) override;
  int max_in_flight() const override { return kSlots; }
  StatusOr<uint64_t> Submit(const Batch& batch) override;
  Status Collect(uint64_t ticket, std::vector<float>* out) override;

  // Device memory taken so far (weights plus workspaces).
  size_t device_bytes_in_use() const { return arena_->in_use(); }
  // Token counts of the buckets replayed from CUDA graphs (after Warmup()).
  std::vector<int> graph_buckets() const;
  // GPU time of the last collected forward pass (upload to pooled vectors), from CUDA events.
  float last_forward_ms() const { return last_forward_ms_; }

  // Benchmarking: runs `batch` eagerly `repeats` times (after one untimed run) with an event
  // between every two ops and returns the time of each kind of op, in forward order. The
  // events add a few microseconds per op. FailedPrecondition while batches are in flight.
  StatusOr<std::vector<OpTime>> ProfileForward(const Batch& batch, int repeats);
  // The GEMMs' algorithm choices, for benchmarking tools.
  LtGemm& gemm() { return *gemm_; }

 private:
  static constexpr int kSlots = 2;

  // Byte offsets of one forward pass's inputs in one contiguous upload.
  struct InputLayout {
    size_t types = 0, positions = 0, cu_seqlens = 0, tiles = 0, num_tiles = 0, normalize = 0,
           bytes = 0;
    InputLayout() = default;
    InputLayout(size_t tokens, size_t sequences, size_t max_tiles);
  };
  // The shape a forward pass is enqueued with: padded tokens, sequence slots, attention tiles.
  struct ForwardShape {
    int tokens = 0;
    int sequences = 0;
    int max_tiles = 0;
    InputLayout layout;
  };
  struct Bucket {
    ForwardShape shape;
    CudaGraphExec graph;
  };
  // Pinned and device staging for one batch in flight.
  struct Slot {
    PinnedHostBuffer host_in;
    DeviceBuffer device_in;
    PinnedHostBuffer host_out;
    CudaEvent uploaded, done, start, stop;
    bool busy = false;
    size_t sequences = 0;
  };

  CudaBackend(const EncoderConfig& config, Pooling pooling, const CudaBackendOptions& options)
      : config_(config), pooling_(pooling), options_(options) {}

  // The batch's shape against itself and the limits; Pack checks the token values.
  Status CheckBatch(const Batch& batch) const;
  // InvalidArgument naming the first token whose id, type or position is outside the model's
  // tables, if one is.
  Status CheckTokens(const Batch& batch) const;
  Status AllocateWorkspaces(const BatchLimits& limits);
  ForwardShape MakeShape(int tokens, int sequences, int max_tiles) const;
  // Whether a pass of `tokens` tokens in `sequences` slots asks for the Hopper attention kernel
  // (more than 64 tokens per slot on average).
  bool HopperAttentionPass(int tokens, int sequences) const;
  // Whether it runs attention on tiles of at most 64 rows (short sequences packed together):
  // the passes that do not ask for the Hopper kernel, for head sizes up to 64.
  bool ShortAttentionPass(int tokens, int sequences) const;
  // Whether such a pass runs the kernel built for short tiles (one wave of blocks at twice the
  // occupancy): once it has a wave of 64-row tiles. Below that, one block's latency is what
  // counts, and the general kernel's is lower.
  bool ShortAttentionKernel(const ForwardShape& shape) const;
  // The padded shape `batch` runs with, and the graph to replay (nullptr: eager).
  ForwardShape ShapeFor(const Batch& batch, const CudaGraphExec** graph) const;
  // Writes `batch` padded to `shape` into `host` at shape.layout, checking its token values on
  // the way (CheckTokens).
  Status Pack(const Batch& batch, const ForwardShape& shape, std::byte* host) const;
  // Events recorded between ops when profiling, each labelled with the op it ends.
  struct OpMarks {
    std::vector<CudaEvent> events;
    std::vector<const char*> labels;
    size_t used = 0;
    Status Mark(const char* label, cudaStream_t stream);
  };
  // Enqueues the forward pass over the inputs at `shape` in inputs_, pooled vectors to pooled_;
  // marks each op in `marks` when given.
  Status EnqueueForward(const ForwardShape& shape, cudaStream_t stream, OpMarks* marks = nullptr);
  // Packs `batch` at `shape` into slot 0's pinned buffer and copies it to the fixed input
  // address on the compute stream (warm-up and profiling, with no batch in flight).
  Status StageInputs(const Batch& batch, const ForwardShape& shape);
  // Runs every graph bucket once eagerly (planning and tuning its GEMMs), then captures it.
  Status CaptureGraphs();
  // Runs one eager pass per power-of-two class of token counts above the graph buckets (the
  // last at max_batch_tokens), so that their GEMMs are tuned at warm-up; later eager shapes
  // reuse their class's algorithms (LtGemm::set_reuse_tuning).
  Status TuneEagerShapes();
  // Sequences of the longest length allowed, `tokens` in all or `sequences` of them.
  Batch FullBatch(int tokens, int sequences) const;
  Status SubmitChecked(const Batch& batch, uint64_t* ticket);
  Status CollectChecked(uint64_t ticket, std::vector<float>* out);
  // Device failures make the backend unhealthy for good; its context may be unusable.
  Status RecordFailure(Status status);

  const EncoderConfig config_;
  const Pooling pooling_;
  const CudaBackendOptions options_;

  // Declared first so that every buffer below is returned to it before it goes.
  std::unique_ptr<DeviceArena> arena_;
  CudaStream stream_;       // compute
  CudaStream copy_stream_;  // uploads
  CublasLtHandle lt_handle_;
  DeviceWeights weights_;
  // fp8_gemms: E4M3 copies of each layer's QKV and feed-forward weights and their scales.
  struct Fp8LayerWeights {
    const uint8_t* qkv = nullptr;
    const uint8_t* ffn_in = nullptr;
    const uint8_t* ffn_out = nullptr;
    const float* qkv_scale = nullptr;
    const float* ffn_in_scale = nullptr;
    const float* ffn_out_scale = nullptr;
  };
  Status QuantizeWeights();
  DeviceBuffer fp8_weight_buffer_;
  std::vector<Fp8LayerWeights> fp8_layers_;
  DeviceBuffer gemm_workspace_;
  std::unique_ptr<LtGemm> gemm_;
  int sm_count_ = 0;  // multiprocessors: small batches split attention tiles below one wave

  // Workspaces sized from the BatchLimits given to Warmup().
  bool warmed_up_ = false;
  BatchLimits limits_;
  DeviceRegion workspace_;
  void* hidden_ = nullptr;         // [tokens, hidden]: the residual stream
  void* scratch_ = nullptr;        // [tokens, max(3 * hidden, intermediate)]: QKV, then FFN inner
  void* context_ = nullptr;        // [tokens, hidden]: attention output
  void* proj_ = nullptr;           // [tokens, hidden]: output projections before the residual
  uint8_t* hidden_fp8_ = nullptr;  // fp8_gemms: [tokens, hidden] E4M3 copy of hidden_
  std::byte* inputs_ = nullptr;    // the current forward pass's inputs (InputLayout)
  float* pooled_ = nullptr;        // [sequences, hidden]
  std::vector<Bucket> buckets_;    // ascending token counts; graphs captured at Warmup()
  std::array<Slot, kSlots> slots_;
  uint64_t next_ticket_ = 0;   // ticket of the next Submit(); its slot is ticket % kSlots
  uint64_t next_collect_ = 0;  // oldest uncollected ticket
  float last_forward_ms_ = 0.0f;

  mutable std::mutex health_mutex_;
  Status health_;  // GUARDED_BY(health_mutex_)
};

}  // namespace sluice::cuda
