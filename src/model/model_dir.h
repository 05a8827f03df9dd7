// ModelDir: what a local Hugging Face / sentence-transformers model directory says about how to
// run it: the HF config, the tokenizer file, and the sentence-transformers pipeline (pooling,
// normalisation, sequence length, output dimension). Weights are opened separately
// (WeightStore); this only reads small JSON files and the safetensors header.
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"
#include "model/hf_config.h"

namespace sluice {

struct ModelDir {
  // The directory holding config.json, tokenizer.json and the weights: the path given, or the
  // Transformer module's folder for sentence-transformers models that keep them there.
  std::filesystem::path dir;
  HfConfig config;
  std::filesystem::path tokenizer_path;  // <dir>/tokenizer.json

  // Pooling as sentence-transformers names it: "cls", "mean", "max", "mean_sqrt_len_tokens",
  // "lasttoken". The engine maps it with ParsePooling(). "mean" when there is no modules.json.
  std::string pooling = "mean";
  bool normalize = false;              // a Normalize module follows pooling
  int max_seq_length = 0;              // tokens, special tokens included
  int embedding_dim = 0;               // length of the pooled vector
  bool sentence_transformers = false;  // modules.json was present

  // Identity for cache keys: `name` is the directory name; `revision` the hex SHA-256 of
  // config.json and the safetensors header(s), so new weights or config change the key while
  // the (large) weights themselves are never hashed.
  std::string name;
  std::string revision;
  // "<name>@<first 16 hex digits of revision>".
  std::string cache_key() const;

  // Reads `path`. NotFound for a missing directory, config.json, tokenizer.json or weights;
  // InvalidArgument for corrupt JSON or a sentence-transformers pipeline sluice cannot run
  // (e.g. a Dense module or several pooling modes at once).
  static StatusOr<ModelDir> Open(const std::filesystem::path& path);
};

}  // namespace sluice
