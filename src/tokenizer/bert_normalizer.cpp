#include "tokenizer/bert_normalizer.h"

#include <algorithm>

#include "tokenizer/json_fields.h"
#include "tokenizer/unicode.h"

namespace sluice::tokenizer {

BertNormalizer::BertNormalizer(const Options& options)
    : clean_text_(options.clean_text),
      handle_chinese_chars_(options.handle_chinese_chars),
      strip_accents_(options.strip_accents.value_or(options.lowercase)),
      lowercase_(options.lowercase) {
  for (int c = 0; c < 128; ++c) {
    int out = c;
    if (clean_text_) {
      bool kept_whitespace = c == '\t' || c == '\n' || c == '\r';
      if (!kept_whitespace && (c < 0x20 || c == 0x7F)) {
        out = -1;  // control characters (NUL included)
      } else if (IsWhitespace(static_cast<char32_t>(c))) {
        out = ' ';
      }
    }
    if (lowercase_ && out >= 'A' && out <= 'Z') out += 'a' - 'A';
    ascii_[static_cast<size_t>(c)] = static_cast<int16_t>(out);
  }
}

StatusOr<std::unique_ptr<BertNormalizer>> BertNormalizer::FromJson(simdjson::dom::object node) {
  constexpr std::string_view kWhat = "BertNormalizer";
  Options options;
  SLUICE_ASSIGN_OR_RETURN(options.clean_text, GetBool(node, "clean_text", kWhat, true));
  SLUICE_ASSIGN_OR_RETURN(options.handle_chinese_chars,
                          GetBool(node, "handle_chinese_chars", kWhat, true));
  SLUICE_ASSIGN_OR_RETURN(options.strip_accents, GetOptionalBool(node, "strip_accents", kWhat));
  SLUICE_ASSIGN_OR_RETURN(options.lowercase, GetBool(node, "lowercase", kWhat, true));
  return std::make_unique<BertNormalizer>(options);
}

void BertNormalizer::Normalize(std::string_view text, std::string* out) const {
  out->reserve(out->size() + text.size() + text.size() / 8);
  std::u32string pending;
  size_t pos = 0;
  while (pos < text.size()) {
    auto byte = static_cast<unsigned char>(text[pos]);
    if (byte < 0x80) {
      ++pos;
      if (!pending.empty()) Flush(&pending, out);
      int16_t mapped = ascii_[byte];
      if (mapped >= 0) out->push_back(static_cast<char>(mapped));
      continue;
    }
    char32_t cp = DecodeUtf8(text, &pos);
    if (clean_text_) {
      if (cp == 0xFFFD || IsOther(cp)) continue;
      if (IsWhitespace(cp)) cp = ' ';
    }
    if (handle_chinese_chars_ && IsChineseChar(cp)) {
      Emit(' ', &pending, out);
      Emit(cp, &pending, out);
      Emit(' ', &pending, out);
    } else {
      Emit(cp, &pending, out);
    }
  }
  if (!pending.empty()) Flush(&pending, out);
}

void BertNormalizer::Emit(char32_t cp, std::u32string* pending, std::string* out) const {
  if (!strip_accents_) {
    AppendCased(cp, out);
    return;
  }
  char32_t parts[kMaxCanonicalDecomposition];
  size_t n = DecomposeCanonical(cp, parts);
  for (size_t i = 0; i < n; ++i) {
    char32_t part = parts[i];
    // Marks are dropped before reordering: removing elements keeps the relative order of the
    // others under a stable sort, so the result is the same.
    if (IsNonspacingMark(part)) continue;
    if (CombiningClass(part) == 0) {
      if (!pending->empty()) Flush(pending, out);
      AppendCased(part, out);
    } else {
      pending->push_back(part);
    }
  }
}

void BertNormalizer::Flush(std::u32string* pending, std::string* out) const {
  std::stable_sort(pending->begin(), pending->end(),
                   [](char32_t a, char32_t b) { return CombiningClass(a) < CombiningClass(b); });
  for (char32_t cp : *pending) AppendCased(cp, out);
  pending->clear();
}

void BertNormalizer::AppendCased(char32_t cp, std::string* out) const {
  if (lowercase_) {
    AppendLowercase(cp, out);
  } else {
    AppendUtf8(cp, out);
  }
}

}  // namespace sluice::tokenizer
