// AddedVocabulary: the "added_tokens" of tokenizer.json ([CLS], [MASK], <|endoftext|>, ...).
// They are cut out of the text before the pipeline sees it and map straight to their ids:
// tokens with normalized=false are matched in the raw text, the others in the normalized text.
// Matching is leftmost-longest; single_word, lstrip and rstrip behave as in `tokenizers`.
// Thread-safety: immutable after creation.
#pragma once

#include <simdjson.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tokenizer/vocab.h"

namespace sluice::tokenizer {

class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  // A run of text, or a matched added token (id >= 0).
  struct Segment {
    std::string_view text;
    int32_t id = -1;
  };

  AddedVocabulary() = default;

  // `normalizer` (may be null) gives the form normalized tokens are matched in.
  static StatusOr<AddedVocabulary> Create(std::vector<AddedToken> tokens,
                                          const Normalizer* normalizer);
  // Reads the "added_tokens" array.
  static StatusOr<AddedVocabulary> FromJson(simdjson::dom::array node,
                                            const Normalizer* normalizer);

  // Appends the segments of `text` to `*out`, matching the tokens with normalized=false (raw)
  // or normalized=true (!raw). Segments cover `text` in order; text runs are never empty.
  void Split(std::string_view text, bool raw, std::vector<Segment>* out) const;

  std::optional<int32_t> TokenToId(std::string_view content) const;
  // The added token with `id`, or nullptr.
  const AddedToken* FindById(int32_t id) const;
  bool IsSpecial(int32_t id) const {
    const AddedToken* token = FindById(id);
    return token != nullptr && token->special;
  }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Patterns of one matching pass, bucketed by first byte, longest first.
  struct Matcher {
    struct Pattern {
      std::string text;
      size_t token;  // index into tokens_
    };
    std::array<std::vector<Pattern>, 256> by_first_byte;
    bool empty = true;
  };

  void Split(std::string_view text, const Matcher& matcher, std::vector<Segment>* out) const;

  std::vector<AddedToken> tokens_;
  StringMap<size_t> by_content_;
  std::vector<std::pair<int32_t, size_t>> by_id_;  // sorted (id, index into tokens_)
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace sluice::tokenizer
