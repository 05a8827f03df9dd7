#include "engine/encoder_weights.h"

#include <array>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace sluice {
namespace {

// Checkpoints name the encoder with the head's prefix ("bert." in BertForMaskedLM) or without.
constexpr std::array<std::string_view, 4> kPrefixes = {"", "bert.", "roberta.", "model."};

// Looks tensors up under one prefix, checks each, and remembers every missing name so the error
// lists them all at once.
class Binder {
 public:
  Binder(const WeightStore& store, std::string prefix)
      : store_(store), prefix_(std::move(prefix)) {}

  // Binds `*out` to the first of `names` present, checking it has `shape`.
  void Bind(std::initializer_list<std::string_view> names, std::vector<int64_t> shape,
            TensorView* out) {
    if (!status_.ok()) return;
    const TensorView* found = nullptr;
    for (std::string_view name : names) {
      found = store_.Find(prefix_ + std::string(name));
      if (found != nullptr) break;
    }
    if (found == nullptr) {
      missing_.push_back(prefix_ + std::string(*names.begin()));
      return;
    }
    if (found->dtype != DType::kF32 && found->dtype != DType::kF16 &&
        found->dtype != DType::kBF16) {
      status_ = InvalidArgument(
          fmt::format("unsupported dtype {} for tensor {} (supported: F32, F16, BF16)",
                      DTypeName(found->dtype), found->name));
      return;
    }
    if (found->shape != shape) {
      TensorView expected;
      expected.shape = std::move(shape);
      status_ = DataLoss(fmt::format("tensor {} has shape {}, but config.json implies {}",
                                     found->name, found->ShapeString(), expected.ShapeString()));
      return;
    }
    *out = *found;
  }

  Status Finish() const {
    if (!status_.ok()) return status_;
    if (missing_.empty()) return Status::Ok();
    constexpr size_t kListed = 8;
    std::vector<std::string_view> listed(missing_.begin(),
                                         missing_.begin() + std::min(missing_.size(), kListed));
    return DataLoss(fmt::format("the weights lack {} tensor{} the encoder needs: {}{}",
                                missing_.size(), missing_.size() == 1 ? "" : "s",
                                fmt::join(listed, ", "), missing_.size() > kListed ? ", ..." : ""));
  }

 private:
  const WeightStore& store_;
  std::string prefix_;
  Status status_;
  std::vector<std::string> missing_;
};

}  // namespace

StatusOr<EncoderWeights> EncoderWeights::Bind(const WeightStore& store,
                                              const EncoderConfig& config) {
  std::string prefix;
  bool found_prefix = false;
  for (std::string_view p : kPrefixes) {
    if (store.Find(std::string(p) + "embeddings.word_embeddings.weight") != nullptr) {
      prefix = std::string(p);
      found_prefix = true;
      break;
    }
  }
  if (!found_prefix) {
    const std::vector<std::string> names = store.Names();
    std::vector<std::string_view> sample(names.begin(),
                                         names.begin() + std::min<size_t>(names.size(), 5));
    return DataLoss(fmt::format(
        "no embeddings.word_embeddings.weight (with or without a bert./roberta./model. prefix) "
        "among the {} tensors ({}{}): not a BERT-family checkpoint",
        names.size(), fmt::join(sample, ", "), names.size() > sample.size() ? ", ..." : ""));
  }

  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.intermediate_size;
  Binder b(store, prefix);
  EncoderWeights w;
  b.Bind({"embeddings.word_embeddings.weight"}, {config.vocab_size, hidden}, &w.word_embeddings);
  b.Bind({"embeddings.position_embeddings.weight"}, {config.max_position_embeddings, hidden},
         &w.position_embeddings);
  if (config.type_vocab_size > 0) {
    b.Bind({"embeddings.token_type_embeddings.weight"}, {config.type_vocab_size, hidden},
           &w.token_type_embeddings);
  }
  // Checkpoints converted from TensorFlow name LayerNorm parameters gamma/beta.
  b.Bind({"embeddings.LayerNorm.weight", "embeddings.LayerNorm.gamma"}, {hidden},
         &w.embeddings_ln_weight);
  b.Bind({"embeddings.LayerNorm.bias", "embeddings.LayerNorm.beta"}, {hidden},
         &w.embeddings_ln_bias);

  w.layers.resize(static_cast<size_t>(config.num_layers));
  for (int i = 0; i < config.num_layers; ++i) {
    EncoderLayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = fmt::format("encoder.layer.{}.", i);
    auto bind = [&](std::string_view suffix, std::vector<int64_t> shape, TensorView* out) {
      b.Bind({p + std::string(suffix)}, std::move(shape), out);
    };
    auto bind_ln = [&](std::string_view module, TensorView* weight, TensorView* bias) {
      const std::string base = p + std::string(module) + ".LayerNorm.";
      b.Bind({base + "weight", base + "gamma"}, {hidden}, weight);
      b.Bind({base + "bias", base + "beta"}, {hidden}, bias);
    };
    bind("attention.self.query.weight", {hidden, hidden}, &l.q_weight);
    bind("attention.self.query.bias", {hidden}, &l.q_bias);
    bind("attention.self.key.weight", {hidden, hidden}, &l.k_weight);
    bind("attention.self.key.bias", {hidden}, &l.k_bias);
    bind("attention.self.value.weight", {hidden, hidden}, &l.v_weight);
    bind("attention.self.value.bias", {hidden}, &l.v_bias);
    bind("attention.output.dense.weight", {hidden, hidden}, &l.attn_out_weight);
    bind("attention.output.dense.bias", {hidden}, &l.attn_out_bias);
    bind_ln("attention.output", &l.attn_ln_weight, &l.attn_ln_bias);
    bind("intermediate.dense.weight", {inter, hidden}, &l.ffn_in_weight);
    bind("intermediate.dense.bias", {inter}, &l.ffn_in_bias);
    bind("output.dense.weight", {hidden, inter}, &l.ffn_out_weight);
    bind("output.dense.bias", {hidden}, &l.ffn_out_bias);
    bind_ln("output", &l.ffn_ln_weight, &l.ffn_ln_bias);
  }
  SLUICE_RETURN_IF_ERROR(b.Finish());
  return w;
}

}  // namespace sluice
