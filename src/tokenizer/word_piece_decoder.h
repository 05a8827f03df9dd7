// WordPieceDecoder: joins WordPiece tokens into text. A token with the continuation prefix
// ("##") glues onto the one before, any other gets a leading space; with cleanup, the spaces
// BERT's splitting put before punctuation and inside English contractions are removed.
#pragma once

#include <simdjson.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tokenizer/decoder.h"

namespace sluice::tokenizer {

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}

  // Reads {"type": "WordPiece", "prefix": "##", "cleanup": true}.
  static StatusOr<std::unique_ptr<WordPieceDecoder>> FromJson(simdjson::dom::object node);

  void DecodeChain(std::vector<std::string>* tokens) const override;

 private:
  std::string prefix_;
  bool cleanup_;
};

}  // namespace sluice::tokenizer
