// DeviceWeights: an encoder's weights on one GPU in the backend's 16-bit type, in one arena
// buffer. Q, K and V are fused into one [3 * hidden, hidden] projection (and one bias) so each
// layer's attention input is a single GEMM.
#pragma once

#include <cuda_runtime_api.h>

#include <vector>

#include "backends/cuda/cuda_dtype.h"
#include "backends/cuda/device_arena.h"
#include "common/status.h"
#include "engine/encoder_config.h"
#include "engine/encoder_weights.h"

namespace sluice::cuda {

struct DeviceLayerWeights {
  const void* qkv_weight = nullptr;  // [3 * hidden, hidden]: Q rows, then K, then V
  const void* qkv_bias = nullptr;    // [3 * hidden]
  const void* attn_out_weight = nullptr;
  const void* attn_out_bias = nullptr;
  const void* attn_ln_weight = nullptr;
  const void* attn_ln_bias = nullptr;
  const void* ffn_in_weight = nullptr;
  const void* ffn_in_bias = nullptr;
  const void* ffn_out_weight = nullptr;
  const void* ffn_out_bias = nullptr;
  const void* ffn_ln_weight = nullptr;
  const void* ffn_ln_bias = nullptr;
};

class DeviceWeights {
 public:
  // Checks every view's shape, dtype (F32, F16 or BF16) and size against `config`, touching
  // no device. InvalidArgument names the first mismatched tensor.
  static Status Check(const EncoderConfig& config, const EncoderWeights& weights);
  // Check()s the weights, converts them to `dtype` and copies them to the device on `stream`
  // (waiting for the copy). Unavailable when the arena has no room.
  static StatusOr<DeviceWeights> Upload(const EncoderConfig& config, const EncoderWeights& weights,
                                        CudaDType dtype, DeviceArena& arena, cudaStream_t stream);

  const void* word_embeddings = nullptr;
  const void* position_embeddings = nullptr;
  const void* token_type_embeddings = nullptr;  // nullptr when the model has none
  const void* embeddings_ln_weight = nullptr;
  const void* embeddings_ln_bias = nullptr;
  std::vector<DeviceLayerWeights> layers;

  size_t bytes() const { return buffer_.bytes(); }

 private:
  DeviceBuffer buffer_;
};

}  // namespace sluice::cuda
