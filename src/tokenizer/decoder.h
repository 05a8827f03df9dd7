// Decoder: turns the tokens of ids back into text (tokenizer.json "decoder"). Implementations
// are immutable and thread-safe.
#pragma once

#include <simdjson.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;

  // Rewrites `tokens` in place into pieces whose concatenation is the decoded text.
  virtual void DecodeChain(std::vector<std::string>* tokens) const = 0;

  // Builds the decoder a tokenizer.json "decoder" node describes (WordPiece).
  // InvalidArgument names an unsupported "type".
  static StatusOr<std::unique_ptr<Decoder>> FromJson(simdjson::dom::element node);
};

}  // namespace sluice::tokenizer
