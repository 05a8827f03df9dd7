// EncoderConfig: the architecture of a transformer encoder (BERT family), read from a Hugging
// Face config.json. Backends size their buffers and kernels from it.
#pragma once

#include <string>

#include "common/status.h"
#include "model/hf_config.h"

namespace sluice {

enum class EncoderFamily {
  kBert,     // BERT, MiniLM, BGE, E5, GTE-base: absolute positions from 0
  kRoberta,  // RoBERTa, XLM-R: positions start at pad_token_id + 1
};

enum class Activation {
  kGelu,      // exact erf GELU ("gelu")
  kGeluTanh,  // tanh approximation ("gelu_new", "gelu_pytorch_tanh")
  kRelu,
  kSilu,
};

struct EncoderConfig {
  EncoderFamily family = EncoderFamily::kBert;
  std::string model_type;  // as in config.json ("bert")
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  int type_vocab_size = 0;  // 0 when the model has no token-type embeddings
  int pad_token_id = 0;
  float layer_norm_eps = 1e-12f;
  Activation activation = Activation::kGelu;
  // Added to each token's position within its sequence to index position_embeddings.
  int position_offset = 0;

  int head_dim() const { return hidden_size / num_heads; }
  // The longest sequence the position embeddings can index.
  int max_sequence_length() const { return max_position_embeddings - position_offset; }

  // Validates an HF config and maps it to an encoder; InvalidArgument for unknown architectures,
  // activations or inconsistent sizes (hidden_size % num_heads != 0, ...).
  static StatusOr<EncoderConfig> FromHf(const HfConfig& hf);
};

}  // namespace sluice
