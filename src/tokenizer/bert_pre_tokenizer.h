// BertPreTokenizer: splits on whitespace (dropped) and around every punctuation character
// (each one its own word), as Hugging Face `tokenizers` does for BERT.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "tokenizer/pre_tokenizer.h"

namespace sluice::tokenizer {

class BertPreTokenizer final : public PreTokenizer {
 public:
  BertPreTokenizer();

  void PreTokenize(std::string_view text, WordList* words) const override;

 private:
  enum class CharClass : uint8_t { kWord, kSpace, kPunctuation };
  static CharClass Classify(char32_t cp);

  std::array<CharClass, 128> ascii_;
};

}  // namespace sluice::tokenizer
