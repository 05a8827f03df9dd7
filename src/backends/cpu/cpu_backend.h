// CpuBackend: the BERT-family encoder forward pass on the CPU in fp32, over cpu::PackedGemm (or
// OpenBLAS on CPUs without AVX2) for the GEMMs and a ThreadPool for everything else.
// Padding-free: every op runs over the flat batch and attention only ever looks at one sequence's
// own tokens.
//
// Thread-safety: as Backend (one driving thread; Health() from any thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/aligned_buffer.h"
#include "backends/cpu/packed_gemm.h"
#include "common/thread_pool.h"
#include "engine/backend.h"
#include "engine/encoder_config.h"
#include "engine/encoder_weights.h"
#include "engine/pooling.h"

namespace sluice {

struct CpuBackendOptions {
  int num_threads = 0;  // threads for one forward pass, the caller's included; 0 = all cores
};

class CpuBackend : public Backend {
 public:
  // Converts every weight (F32, F16 or BF16) to owned fp32 buffers, so `weights` need not
  // outlive the backend. InvalidArgument when a tensor's size does not match `config`.
  static StatusOr<std::unique_ptr<CpuBackend>> Create(const EncoderConfig& config,
                                                      const EncoderWeights& weights,
                                                      Pooling pooling,
                                                      CpuBackendOptions options = {});

  std::string name() const override { return "cpu"; }
  int embedding_dim() const override { return config_.hidden_size; }
  Status Health() const override { return Status::Ok(); }
  Status Warmup(const BatchLimits& limits) override;
  // FailedPrecondition before Warmup(); InvalidArgument for a malformed batch (sizes, ids out of
  // the vocabulary, positions past max_position_embeddings); TooLarge above the limits.
  Status Embed(const Batch& batch, std::vector<float>* out) override;

  // Runs the encoder and returns the final hidden states ([num_tokens, hidden], row-major)
  // instead of pooled vectors. Same preconditions and errors as Embed().
  Status Forward(const Batch& batch, std::vector<float>* hidden_states);

  int num_threads() const { return pool_.num_threads(); }

 private:
  // A linear layer's weight [n, k]: packed for cpu::PackedGemm, or as converted for OpenBLAS,
  // depending on the process's GEMM path (cpu::UsePackedGemm()).
  struct LinearWeight {
    cpu::AlignedBuffer raw;
    cpu::PackedMatrix packed;
    size_t n = 0, k = 0;
  };

  struct Layer {
    LinearWeight qkv_w;  // Q, K and V stacked: [3H, H]
    cpu::AlignedBuffer qkv_b;
    LinearWeight out_w;  // [H, H]
    cpu::AlignedBuffer out_b;
    cpu::AlignedBuffer ln1_g, ln1_b;
    LinearWeight ffn_in_w;  // [I, H]
    cpu::AlignedBuffer ffn_in_b;
    LinearWeight ffn_out_w;  // [H, I]
    cpu::AlignedBuffer ffn_out_b;
    cpu::AlignedBuffer ln2_g, ln2_b;
  };

  CpuBackend(const EncoderConfig& config, Pooling pooling, int num_threads);

  Status ConvertWeights(const EncoderWeights& weights);
  Status Validate(const Batch& batch) const;
  // The encoder over a validated batch; leaves the final hidden states in hidden_.
  void RunEncoder(const Batch& batch);
  void Embeddings(const Batch& batch);
  void EncoderLayer(const Batch& batch, const Layer& layer);
  void Attention(const Batch& batch);
  // Packs w.raw for PackedGemm (and frees it) when this process uses PackedGemm.
  static Status Prepare(LinearWeight& w);
  // What a Linear epilogue may be given: any block of the output (elementwise work: bias,
  // activation) or only whole rows (LayerNorm).
  enum class EpilogueScope { kElementwise, kWholeRows };
  // y[m, n] = x[m, k] * w[n, k]^T, split over the pool; then `epilogue(row0, rows, col0, cols)`
  // runs on each finished block of y, by the thread that computed it where `scope` allows.
  template <typename Epilogue>
  void Linear(const float* x, size_t m, const LinearWeight& w, float* y, EpilogueScope scope,
              const Epilogue& epilogue);
  void Pool(const Batch& batch, float* out);

  const EncoderConfig config_;
  const Pooling pooling_;
  const bool packed_gemm_;  // cpu::UsePackedGemm(), fixed for the process

  cpu::AlignedBuffer word_emb_, pos_emb_, type_emb_;  // type_emb_ empty without token types
  cpu::AlignedBuffer emb_ln_g_, emb_ln_b_;
  std::vector<Layer> layers_;

  bool warm_ = false;
  BatchLimits limits_;
  // Workspaces, sized by Warmup() for limits_.
  cpu::AlignedBuffer hidden_;   // [tokens, H]: the residual stream
  cpu::AlignedBuffer qkv_;      // [tokens, 3H]
  cpu::AlignedBuffer context_;  // [tokens, H]: attention output before its projection
  cpu::AlignedBuffer ffn_;      // [tokens, I]
  cpu::AlignedBuffer scores_;   // per thread: [max_seq, max_seq]

  ThreadPool pool_;  // last: its workers stop before the buffers they use go away
};

}  // namespace sluice
