#include "model/model_dir.h"

#include <openssl/evp.h>
#include <simdjson.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "model/json_util.h"
#include "model/safetensors_file.h"
#include "model/weight_store.h"

namespace sluice {
namespace {

// tokenizer_config.json says 1e30 when a tokenizer has no limit of its own.
constexpr double kNoLimit = 1e9;

bool Exists(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Incremental SHA-256 (OpenSSL); each part is length-prefixed so boundaries count.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    SLUICE_CHECK(ctx_ != nullptr && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1)
        << "OpenSSL SHA-256 initialisation failed";
  }

  void AddPart(std::string_view label, std::string_view bytes) {
    const std::string prefix = fmt::format("{}:{}:", label, bytes.size());
    SLUICE_CHECK(EVP_DigestUpdate(ctx_.get(), prefix.data(), prefix.size()) == 1);
    SLUICE_CHECK(EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) == 1);
  }

  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    SLUICE_CHECK(EVP_DigestFinal_ex(ctx_.get(), digest, &len) == 1);
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", digest[i]);
    return hex;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// The last dotted component of a sentence-transformers module type
// ("sentence_transformers.models.Pooling" -> "Pooling").
std::string_view ModuleKind(std::string_view type) {
  const size_t dot = type.rfind('.');
  return dot == std::string_view::npos ? type : type.substr(dot + 1);
}

struct Module {
  std::string kind;
  std::string path;
};

StatusOr<std::vector<Module>> ReadModules(const std::filesystem::path& modules_path) {
  simdjson::dom::parser parser;
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseJsonFile(parser, modules_path));
  simdjson::dom::array array;
  if (root.get_array().get(array) != simdjson::SUCCESS) {
    return InvalidArgument(fmt::format("{} is not a JSON array", modules_path.string()));
  }
  std::vector<Module> modules;
  for (simdjson::dom::element item : array) {
    std::string_view type;
    std::string_view path;
    if (item["type"].get_string().get(type) != simdjson::SUCCESS) {
      return InvalidArgument(fmt::format("{}: a module has no \"type\"", modules_path.string()));
    }
    if (item["path"].get_string().get(path) != simdjson::SUCCESS) path = "";
    if (path.find("..") != std::string_view::npos || (!path.empty() && path.front() == '/')) {
      return InvalidArgument(fmt::format("{}: module path \"{}\" leaves the model directory",
                                         modules_path.string(), path));
    }
    modules.push_back({std::string(ModuleKind(type)), std::string(path)});
  }
  return modules;
}

struct PoolingSettings {
  std::string mode;
  int dimension = 0;  // 0 when the config does not say
};

StatusOr<PoolingSettings> ReadPoolingConfig(const std::filesystem::path& path) {
  simdjson::dom::parser parser;
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseJsonFile(parser, path));
  if (!root.is_object()) {
    return InvalidArgument(fmt::format("{} is not a JSON object", path.string()));
  }
  static constexpr std::pair<std::string_view, std::string_view> kModes[] = {
      {"pooling_mode_cls_token", "cls"},
      {"pooling_mode_mean_tokens", "mean"},
      {"pooling_mode_max_tokens", "max"},
      {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
      {"pooling_mode_weightedmean_tokens", "weightedmean"},
      {"pooling_mode_lasttoken", "lasttoken"},
  };
  std::vector<std::string_view> enabled;
  for (const auto& [key, mode] : kModes) {
    bool on = false;
    if (root[key].get_bool().get(on) == simdjson::SUCCESS && on) enabled.push_back(mode);
  }
  std::string_view named;
  if (enabled.empty() && root["pooling_mode"].get_string().get(named) == simdjson::SUCCESS) {
    enabled.push_back(named);
  }
  if (enabled.empty()) {
    return InvalidArgument(fmt::format("{} enables no pooling mode", path.string()));
  }
  if (enabled.size() > 1) {
    return InvalidArgument(
        fmt::format("{} combines pooling modes ({}); only one at a time is supported",
                    path.string(), fmt::join(enabled, ", ")));
  }
  if (enabled[0] == "weightedmean") {
    return InvalidArgument(
        fmt::format("{}: pooling mode weightedmean is not supported (supported: cls, mean, max, "
                    "mean_sqrt_len_tokens, lasttoken)",
                    path.string()));
  }
  PoolingSettings settings{std::string(enabled[0]), 0};
  int64_t dim = 0;
  if (root["word_embedding_dimension"].get_int64().get(dim) == simdjson::SUCCESS) {
    if (dim <= 0 || dim > (int64_t{1} << 20)) {
      return InvalidArgument(
          fmt::format("{}: word_embedding_dimension {} is out of range", path.string(), dim));
    }
    settings.dimension = static_cast<int>(dim);
  }
  return settings;
}

// max_seq_length from sentence_bert_config.json; nullopt when the file or key is absent.
StatusOr<std::optional<int>> ReadSentenceBertMaxLength(const std::filesystem::path& path) {
  if (!Exists(path)) return std::optional<int>();
  simdjson::dom::parser parser;
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseJsonFile(parser, path));
  simdjson::dom::element value;
  if (root["max_seq_length"].get(value) != simdjson::SUCCESS || value.is_null()) {
    return std::optional<int>();
  }
  int64_t n = 0;
  if (value.get_int64().get(n) != simdjson::SUCCESS || n <= 0 || n > (int64_t{1} << 24)) {
    return InvalidArgument(
        fmt::format("{}: max_seq_length must be a positive integer", path.string()));
  }
  return std::optional<int>(static_cast<int>(n));
}

// model_max_length from tokenizer_config.json; nullopt when absent or "unlimited".
StatusOr<std::optional<int>> ReadTokenizerMaxLength(const std::filesystem::path& path) {
  if (!Exists(path)) return std::optional<int>();
  simdjson::dom::parser parser;
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::element root, ParseJsonFile(parser, path));
  double n = 0;
  if (root["model_max_length"].get_double().get(n) != simdjson::SUCCESS || n <= 0 ||
      n >= kNoLimit) {
    return std::optional<int>();
  }
  return std::optional<int>(static_cast<int>(n));
}

// Hashes what decides the model's outputs, except the weight bytes themselves.
StatusOr<std::string> ComputeRevision(const std::filesystem::path& hf_dir,
                                      std::vector<std::filesystem::path> files) {
  Sha256 sha;
  for (const char* name : {"config.json", "tokenizer.json", "sentence_bert_config.json",
                           "model.safetensors.index.json"}) {
    files.push_back(hf_dir / name);
  }
  for (const std::filesystem::path& path : files) {
    if (!Exists(path)) continue;
    SLUICE_ASSIGN_OR_RETURN(std::string bytes, ReadSmallFile(path, kMaxJsonFileBytes));
    sha.AddPart(path.filename().string(), bytes);
  }
  SLUICE_ASSIGN_OR_RETURN(std::vector<std::filesystem::path> weights,
                          WeightStore::WeightFiles(hf_dir));
  for (const std::filesystem::path& path : weights) {
    StatusOr<std::string> header = SafetensorsFile::ReadHeaderBytes(path);
    if (!header.ok() && header.status().code() == StatusCode::kNotFound) {
      return DataLoss(
          fmt::format("{}: weight shard {} is missing", hf_dir.string(), path.filename().string()));
    }
    SLUICE_RETURN_IF_ERROR(header.status());
    sha.AddPart(path.filename().string(), *header);
  }
  return sha.HexDigest();
}

}  // namespace

std::string ModelDir::cache_key() const { return name + "@" + revision.substr(0, 16); }

StatusOr<ModelDir> ModelDir::Open(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFound(fmt::format("model directory {} not found", path.string()));
  }
  if (!std::filesystem::is_directory(path, ec)) {
    return InvalidArgument(fmt::format("{} is not a directory", path.string()));
  }

  ModelDir model;
  model.dir = path;
  std::filesystem::path normal = std::filesystem::absolute(path, ec).lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();  // "models/x/"
  model.name = normal.filename().string();
  // Files besides the HF ones whose bytes decide the outputs, for the revision hash.
  std::vector<std::filesystem::path> pipeline_files;

  // The sentence-transformers pipeline, when there is one.
  std::vector<Module> modules;
  const std::filesystem::path modules_path = path / "modules.json";
  if (Exists(modules_path)) {
    SLUICE_ASSIGN_OR_RETURN(modules, ReadModules(modules_path));
    model.sentence_transformers = true;
    pipeline_files.push_back(modules_path);
  }
  std::optional<PoolingSettings> pooling;
  bool have_transformer = false;
  for (size_t i = 0; i < modules.size(); ++i) {
    const Module& m = modules[i];
    if (m.kind == "Transformer") {
      if (i != 0) {
        return InvalidArgument(
            fmt::format("{}: the Transformer module must come first", modules_path.string()));
      }
      have_transformer = true;
      // Older sentence-transformers models keep the HF files in the module's folder.
      if (!m.path.empty() && Exists(path / m.path / "config.json")) model.dir = path / m.path;
    } else if (m.kind == "Pooling") {
      if (pooling.has_value()) {
        return InvalidArgument(
            fmt::format("{}: more than one Pooling module", modules_path.string()));
      }
      SLUICE_ASSIGN_OR_RETURN(pooling, ReadPoolingConfig(path / m.path / "config.json"));
      pipeline_files.push_back(path / m.path / "config.json");
    } else if (m.kind == "Normalize") {
      model.normalize = true;
    } else {
      return InvalidArgument(fmt::format(
          "{}: sentence-transformers module {} (\"{}\") is not supported; supported modules: "
          "Transformer, Pooling, Normalize",
          modules_path.string(), m.kind, m.path));
    }
  }
  if (model.sentence_transformers && !have_transformer) {
    return InvalidArgument(fmt::format("{} has no Transformer module", modules_path.string()));
  }
  if (model.sentence_transformers && !pooling.has_value()) {
    return InvalidArgument(fmt::format("{} has no Pooling module", modules_path.string()));
  }

  SLUICE_ASSIGN_OR_RETURN(model.config, HfConfig::Load(model.dir / "config.json"));
  model.tokenizer_path = model.dir / "tokenizer.json";
  if (!Exists(model.tokenizer_path)) {
    return NotFound(fmt::format("{} not found (sluice reads tokenizer.json only)",
                                model.tokenizer_path.string()));
  }

  const std::optional<int64_t> hidden = model.config.GetInt("hidden_size");
  if (pooling.has_value()) {
    model.pooling = pooling->mode;
    if (pooling->dimension != 0 && hidden.has_value() && *hidden != pooling->dimension) {
      return InvalidArgument(fmt::format(
          "{}: the pooling config's word_embedding_dimension {} differs from hidden_size {}",
          path.string(), pooling->dimension, *hidden));
    }
    model.embedding_dim = pooling->dimension;
  }
  if (model.embedding_dim == 0) {
    if (!hidden.has_value() || *hidden <= 0 || *hidden > (int64_t{1} << 20)) {
      return InvalidArgument(
          fmt::format("{}: config.json has no valid hidden_size", model.dir.string()));
    }
    model.embedding_dim = static_cast<int>(*hidden);
  }

  SLUICE_ASSIGN_OR_RETURN(std::optional<int> st_max,
                          ReadSentenceBertMaxLength(model.dir / "sentence_bert_config.json"));
  if (st_max.has_value()) {
    model.max_seq_length = *st_max;
  } else {
    // As sentence-transformers does: the smaller of the model's and the tokenizer's limits.
    SLUICE_ASSIGN_OR_RETURN(std::optional<int> tok_max,
                            ReadTokenizerMaxLength(model.dir / "tokenizer_config.json"));
    const std::optional<int64_t> positions = model.config.GetInt("max_position_embeddings");
    int64_t limit = INT64_MAX;
    if (positions.has_value() && *positions > 0) limit = *positions;
    if (tok_max.has_value()) limit = std::min<int64_t>(limit, *tok_max);
    if (limit == INT64_MAX) {
      return InvalidArgument(
          fmt::format("{}: cannot tell the maximum sequence length (no sentence_bert_config.json, "
                      "tokenizer_config.json model_max_length or max_position_embeddings)",
                      model.dir.string()));
    }
    model.max_seq_length = static_cast<int>(std::min<int64_t>(limit, int64_t{1} << 24));
  }

  SLUICE_ASSIGN_OR_RETURN(model.revision, ComputeRevision(model.dir, std::move(pipeline_files)));
  return model;
}

}  // namespace sluice
