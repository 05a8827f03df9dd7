// Model: turns one pre-tokenized word into token ids (tokenizer.json "model"). Implementations
// are immutable and thread-safe.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::tokenizer {

class Model {
 public:
  virtual ~Model() = default;

  // Appends the ids of `word` to `*ids`. REQUIRES: `word` is valid UTF-8.
  virtual void Tokenize(std::string_view word, std::vector<int32_t>* ids) const = 0;

  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  // The token of `id`, or nullptr when the model has none.
  virtual const std::string* IdToToken(int32_t id) const = 0;
  virtual size_t vocab_size() const = 0;

  // Builds the model a tokenizer.json "model" node describes (WordPiece). InvalidArgument names
  // an unsupported "type" or a malformed field.
  static StatusOr<std::unique_ptr<Model>> FromJson(simdjson::dom::element node);
};

}  // namespace sluice::tokenizer
