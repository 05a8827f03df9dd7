// CudaBackend: an encoder (BERT family) on one GPU. Weights live on the device in fp16 or bf16
// (Q/K/V fused); a forward pass is cuBLASLt GEMMs with fused epilogues plus fused kernels for
// embedding+LayerNorm, residual+LayerNorm, padding-free attention and pooling, all enqueued on
// one stream; pooled vectors come back through pinned memory.
//
// Thread-safety: as Backend. Health() may be called from any thread.
#pragma once

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

  // Device memory taken so far (weights plus workspaces).
  size_t device_bytes_in_use() const { return arena_->in_use(); }

 private:
  CudaBackend(const EncoderConfig& config, Pooling pooling, const CudaBackendOptions& options)
      : config_(config), pooling_(pooling), options_(options) {}

  Status CheckBatch(const Batch& batch) const;
  Status AllocateWorkspaces(const BatchLimits& limits);
  // Enqueues the whole forward pass for a checked batch and waits for the pooled vectors.
  Status Forward(const Batch& batch, std::vector<float>* out);
  // Device failures make the backend unhealthy for good; its context may be unusable.
  Status RecordFailure(Status status);

  const EncoderConfig config_;
  const Pooling pooling_;
  const CudaBackendOptions options_;

  // Declared first so that every buffer below is returned to it before it goes.
  std::unique_ptr<DeviceArena> arena_;
  CudaStream stream_;
  CublasLtHandle lt_handle_;
  DeviceWeights weights_;
  DeviceBuffer gemm_workspace_;
  std::unique_ptr<LtGemm> gemm_;

  // Workspaces sized from the BatchLimits given to Warmup().
  bool warmed_up_ = false;
  BatchLimits limits_;
  DeviceRegion workspace_;
  void* hidden_ = nullptr;       // [tokens, hidden]: the residual stream
  void* scratch_ = nullptr;      // [tokens, max(3 * hidden, intermediate)]: QKV, then FFN inner
  void* context_ = nullptr;      // [tokens, hidden]: attention output
  void* proj_ = nullptr;         // [tokens, hidden]: output projections before the residual
  std::byte* inputs_ = nullptr;  // ids, types, positions, cu_seqlens, normalize flags
  float* pooled_ = nullptr;      // [sequences, hidden]
  PinnedHostBuffer host_inputs_;
  PinnedHostBuffer host_pooled_;

  mutable std::mutex health_mutex_;
  Status health_;  // GUARDED_BY(health_mutex_)
};

}  // namespace sluice::cuda
