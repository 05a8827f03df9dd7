#include "tokenizer/bert_pre_tokenizer.h"

#include "tokenizer/unicode.h"

namespace sluice::tokenizer {

BertPreTokenizer::BertPreTokenizer() {
  for (size_t c = 0; c < ascii_.size(); ++c) ascii_[c] = Classify(static_cast<char32_t>(c));
}

BertPreTokenizer::CharClass BertPreTokenizer::Classify(char32_t cp) {
  if (IsWhitespace(cp)) return CharClass::kSpace;
  if (IsBertPunctuation(cp)) return CharClass::kPunctuation;
  return CharClass::kWord;
}

void BertPreTokenizer::PreTokenize(std::string_view text, WordList* words) const {
  size_t word_start = 0;
  bool in_word = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t at = pos;
    auto byte = static_cast<unsigned char>(text[pos]);
    CharClass cls;
    if (byte < 0x80) {
      cls = ascii_[byte];
      ++pos;
    } else {
      cls = Classify(DecodeUtf8(text, &pos));
    }
    if (cls == CharClass::kWord) {
      if (!in_word) {
        word_start = at;
        in_word = true;
      }
      continue;
    }
    if (in_word) {
      words->Add(text.substr(word_start, at - word_start));
      in_word = false;
    }
    if (cls == CharClass::kPunctuation) words->Add(text.substr(at, pos - at));
  }
  if (in_word) words->Add(text.substr(word_start));
}

}  // namespace sluice::tokenizer
