// Normalizer: the first stage of the pipeline, rewriting text before it is split into words
// (tokenizer.json "normalizer"). Implementations are immutable and thread-safe.
#pragma once

#include <simdjson.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;

  // Appends the normalized form of `text` to `*out`. REQUIRES: `text` is valid UTF-8.
  virtual void Normalize(std::string_view text, std::string* out) const = 0;

  // Builds the normalizer a tokenizer.json "normalizer" node describes (BertNormalizer, or a
  // Sequence of normalizers). InvalidArgument names an unsupported "type".
  static StatusOr<std::unique_ptr<Normalizer>> FromJson(simdjson::dom::element node);
};

}  // namespace sluice::tokenizer
