// EncoderWeights: named views of every weight an encoder forward pass needs, bound from a
// WeightStore and checked against an EncoderConfig. Views stay valid while the store lives.
// Linear weights keep the PyTorch layout [out_features, in_features].
#pragma once

#include <vector>

#include "common/status.h"
#include "engine/encoder_config.h"
#include "model/tensor.h"
#include "model/weight_store.h"

namespace sluice {

struct EncoderLayerWeights {
  TensorView q_weight, q_bias;  // [hidden, hidden], [hidden]
  TensorView k_weight, k_bias;
  TensorView v_weight, v_bias;
  TensorView attn_out_weight, attn_out_bias;  // [hidden, hidden], [hidden]
  TensorView attn_ln_weight, attn_ln_bias;    // [hidden]
  TensorView ffn_in_weight, ffn_in_bias;      // [intermediate, hidden], [intermediate]
  TensorView ffn_out_weight, ffn_out_bias;    // [hidden, intermediate], [hidden]
  TensorView ffn_ln_weight, ffn_ln_bias;      // [hidden]
};

struct EncoderWeights {
  TensorView word_embeddings;        // [vocab, hidden]
  TensorView position_embeddings;    // [max_positions, hidden]
  TensorView token_type_embeddings;  // [type_vocab, hidden]; empty when type_vocab_size == 0
  TensorView embeddings_ln_weight, embeddings_ln_bias;  // [hidden]
  std::vector<EncoderLayerWeights> layers;

  // Finds every tensor (with or without a "bert."/"roberta."/"model." prefix) and checks its
  // shape and dtype (F32, F16 or BF16). DataLoss/InvalidArgument name the offending tensor.
  static StatusOr<EncoderWeights> Bind(const WeightStore& store, const EncoderConfig& config);
};

}  // namespace sluice
