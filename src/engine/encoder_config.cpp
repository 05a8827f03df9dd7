#include "engine/encoder_config.h"

#include <array>
#include <cmath>
#include <optional>

#include <fmt/format.h>

namespace sluice {
namespace {

struct ModelTypeInfo {
  std::string_view model_type;
  EncoderFamily family;
  int default_pad_token_id;  // the transformers default when config.json omits it
};

constexpr std::array<ModelTypeInfo, 4> kModelTypes = {{
    {"bert", EncoderFamily::kBert, 0},
    {"roberta", EncoderFamily::kRoberta, 1},
    {"xlm-roberta", EncoderFamily::kRoberta, 1},
    {"camembert", EncoderFamily::kRoberta, 1},
}};

// Architectures whose encoder is the plain BERT/RoBERTa stack; heads on top are ignored.
struct ArchitectureInfo {
  std::string_view architecture;
  std::string_view model_type;
};

constexpr std::array<ArchitectureInfo, 9> kArchitectures = {{
    {"BertModel", "bert"},
    {"BertForMaskedLM", "bert"},
    {"BertForPreTraining", "bert"},
    {"RobertaModel", "roberta"},
    {"RobertaForMaskedLM", "roberta"},
    {"XLMRobertaModel", "xlm-roberta"},
    {"XLMRobertaForMaskedLM", "xlm-roberta"},
    {"CamembertModel", "camembert"},
    {"CamembertForMaskedLM", "camembert"},
}};

struct ActivationInfo {
  std::string_view name;
  Activation activation;
};

constexpr std::array<ActivationInfo, 6> kActivations = {{
    {"gelu", Activation::kGelu},
    {"gelu_new", Activation::kGeluTanh},
    {"gelu_pytorch_tanh", Activation::kGeluTanh},
    {"relu", Activation::kRelu},
    {"silu", Activation::kSilu},
    {"swish", Activation::kSilu},
}};

template <typename T, size_t N, typename F>
std::string JoinNames(const std::array<T, N>& table, F name_of) {
  std::string out;
  for (const T& entry : table) {
    if (!out.empty()) out += ", ";
    out += name_of(entry);
  }
  return out;
}

const ModelTypeInfo* FindModelType(std::string_view model_type) {
  for (const ModelTypeInfo& info : kModelTypes) {
    if (info.model_type == model_type) return &info;
  }
  return nullptr;
}

const ArchitectureInfo* FindArchitecture(std::string_view architecture) {
  for (const ArchitectureInfo& info : kArchitectures) {
    if (info.architecture == architecture) return &info;
  }
  return nullptr;
}

// Reads a required positive integer no larger than `max`.
Status ReadPositive(const HfConfig& hf, std::string_view key, int64_t max, int* out) {
  const std::optional<int64_t> v = hf.GetInt(key);
  if (!v.has_value()) {
    return InvalidArgument(fmt::format("config.json: \"{}\" is missing or not an integer", key));
  }
  if (*v <= 0 || *v > max) {
    return InvalidArgument(
        fmt::format("config.json: \"{}\" is {}, expected 1 to {}", key, *v, max));
  }
  *out = static_cast<int>(*v);
  return Status::Ok();
}

// Reads an optional non-negative integer, keeping `*out` (the default) when absent.
Status ReadOptionalNonNegative(const HfConfig& hf, std::string_view key, int64_t max, int* out) {
  if (!hf.GetDouble(key).has_value() && !hf.GetString(key).has_value() &&
      !hf.GetBool(key).has_value()) {
    return Status::Ok();  // absent or null
  }
  const std::optional<int64_t> v = hf.GetInt(key);
  if (!v.has_value() || *v < 0 || *v > max) {
    return InvalidArgument(
        fmt::format("config.json: \"{}\" must be an integer from 0 to {}", key, max));
  }
  *out = static_cast<int>(*v);
  return Status::Ok();
}

}  // namespace

StatusOr<EncoderConfig> EncoderConfig::FromHf(const HfConfig& hf) {
  // The family comes from model_type; architectures (when given) must all be ones whose encoder
  // we run, so a model with e.g. relative attention is refused instead of silently misread.
  std::string model_type = hf.model_type();
  for (const std::string& architecture : hf.architectures()) {
    const ArchitectureInfo* arch = FindArchitecture(architecture);
    if (arch == nullptr) {
      return InvalidArgument(fmt::format(
          "unsupported architecture \"{}\"; supported encoder architectures: {}", architecture,
          JoinNames(kArchitectures, [](const ArchitectureInfo& a) { return a.architecture; })));
    }
    if (model_type.empty()) model_type = std::string(arch->model_type);
  }
  if (model_type.empty()) {
    return InvalidArgument("config.json names no model_type or architectures");
  }
  const ModelTypeInfo* type_info = FindModelType(model_type);
  if (type_info == nullptr) {
    return InvalidArgument(
        fmt::format("unsupported model_type \"{}\"; supported encoder model types: {}", model_type,
                    JoinNames(kModelTypes, [](const ModelTypeInfo& t) { return t.model_type; })));
  }

  EncoderConfig config;
  config.family = type_info->family;
  config.model_type = model_type;

  constexpr int64_t kMaxDim = int64_t{1} << 20;
  constexpr int64_t kMaxCount = int64_t{1} << 24;
  SLUICE_RETURN_IF_ERROR(ReadPositive(hf, "vocab_size", kMaxCount, &config.vocab_size));
  SLUICE_RETURN_IF_ERROR(ReadPositive(hf, "hidden_size", kMaxDim, &config.hidden_size));
  SLUICE_RETURN_IF_ERROR(ReadPositive(hf, "num_hidden_layers", 1024, &config.num_layers));
  SLUICE_RETURN_IF_ERROR(ReadPositive(hf, "num_attention_heads", 1024, &config.num_heads));
  SLUICE_RETURN_IF_ERROR(
      ReadPositive(hf, "intermediate_size", kMaxDim * 8, &config.intermediate_size));
  SLUICE_RETURN_IF_ERROR(
      ReadPositive(hf, "max_position_embeddings", kMaxCount, &config.max_position_embeddings));
  config.type_vocab_size = 2;  // the transformers default for BERT and RoBERTa configs
  SLUICE_RETURN_IF_ERROR(
      ReadOptionalNonNegative(hf, "type_vocab_size", 1024, &config.type_vocab_size));
  config.pad_token_id = type_info->default_pad_token_id;
  SLUICE_RETURN_IF_ERROR(
      ReadOptionalNonNegative(hf, "pad_token_id", kMaxCount, &config.pad_token_id));

  if (const std::optional<double> eps = hf.GetDouble("layer_norm_eps"); eps.has_value()) {
    if (!std::isfinite(*eps) || *eps <= 0 || *eps > 1) {
      return InvalidArgument(fmt::format("config.json: layer_norm_eps {} is out of range", *eps));
    }
    config.layer_norm_eps = static_cast<float>(*eps);
  }

  const std::string act = hf.GetString("hidden_act").value_or("gelu");
  bool found_activation = false;
  for (const ActivationInfo& info : kActivations) {
    if (info.name == act) {
      config.activation = info.activation;
      found_activation = true;
    }
  }
  if (!found_activation) {
    return InvalidArgument(
        fmt::format("unsupported hidden_act \"{}\"; supported activations: {}", act,
                    JoinNames(kActivations, [](const ActivationInfo& a) { return a.name; })));
  }

  if (const std::optional<std::string> pos = hf.GetString("position_embedding_type");
      pos.has_value() && *pos != "absolute") {
    return InvalidArgument(fmt::format(
        "unsupported position_embedding_type \"{}\"; only \"absolute\" is supported", *pos));
  }

  if (config.hidden_size % config.num_heads != 0) {
    return InvalidArgument(
        fmt::format("config.json: hidden_size {} is not a multiple of num_attention_heads {}",
                    config.hidden_size, config.num_heads));
  }
  if (config.pad_token_id >= config.vocab_size) {
    return InvalidArgument(fmt::format("config.json: pad_token_id {} is outside vocab_size {}",
                                       config.pad_token_id, config.vocab_size));
  }
  if (config.family == EncoderFamily::kRoberta) {
    // RoBERTa numbers real tokens from padding_idx + 1 (create_position_ids_from_input_ids).
    config.position_offset = config.pad_token_id + 1;
    if (config.position_offset >= config.max_position_embeddings) {
      return InvalidArgument(fmt::format(
          "config.json: max_position_embeddings {} leaves no positions after the offset {}",
          config.max_position_embeddings, config.position_offset));
    }
  }
  return config;
}

}  // namespace sluice
