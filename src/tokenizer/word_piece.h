// WordPiece: greedy longest-match-first subword model (BERT). A word is split into the longest
// vocabulary prefix, then the longest "##"-prefixed continuations; a word that cannot be
// covered, or has more than max_input_chars_per_word characters, becomes the unknown token.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tokenizer/model.h"
#include "tokenizer/vocab.h"

namespace sluice::tokenizer {

class WordPiece final : public Model {
 public:
  struct Options {
    std::string unk_token = "[UNK]";
    std::string continuing_subword_prefix = "##";
    size_t max_input_chars_per_word = 100;
  };

  // InvalidArgument when the unknown token is not in `vocab`.
  static StatusOr<std::unique_ptr<WordPiece>> Create(Vocab vocab, Options options);
  // Reads a {"type": "WordPiece", "vocab": {...}, ...} node.
  static StatusOr<std::unique_ptr<WordPiece>> FromJson(simdjson::dom::object node);

  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const override;
  std::optional<int32_t> TokenToId(std::string_view token) const override {
    return vocab_.Find(token);
  }
  const std::string* IdToToken(int32_t id) const override { return vocab_.Token(id); }
  size_t vocab_size() const override { return vocab_.size(); }

 private:
  WordPiece(Vocab vocab, Options options, int32_t unk_id);

  Vocab vocab_;
  Options options_;
  int32_t unk_id_;
  // Continuation pieces keyed without their prefix, so a lookup needs no string building.
  StringMap<int32_t> continuations_;
  size_t max_token_bytes_ = 0;
  size_t max_continuation_bytes_ = 0;
};

}  // namespace sluice::tokenizer
