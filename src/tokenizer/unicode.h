// Unicode helpers for the tokenizer: UTF-8 decoding and validation, and the character classes
// Hugging Face `tokenizers` uses (Rust's White_Space and full lowercase mapping, general
// categories, canonical decomposition), answered from utf8proc's tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::tokenizer {

// Byte offset of the first byte of `text` that is not part of well-formed UTF-8 (overlong
// forms, surrogates and code points past U+10FFFF are ill-formed), or nullopt when it is valid.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Decodes the code point starting at text[*pos] and moves *pos past it.
// REQUIRES: `text` is valid UTF-8 and *pos is at the start of a code point.
inline char32_t DecodeUtf8(std::string_view text, size_t* pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + *pos;
  unsigned char b0 = s[0];
  if (b0 < 0x80) {
    *pos += 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *pos += 2;
    return (char32_t{b0 & 0x1Fu} << 6) | (s[1] & 0x3Fu);
  }
  if (b0 < 0xF0) {
    *pos += 3;
    return (char32_t{b0 & 0x0Fu} << 12) | (char32_t{s[1] & 0x3Fu} << 6) | (s[2] & 0x3Fu);
  }
  *pos += 4;
  return (char32_t{b0 & 0x07u} << 18) | (char32_t{s[1] & 0x3Fu} << 12) |
         (char32_t{s[2] & 0x3Fu} << 6) | (s[3] & 0x3Fu);
}

// Appends the UTF-8 form of `cp` (a Unicode scalar value) to `out`.
inline void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    char buf[2] = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    out->append(buf, 2);
  } else if (cp < 0x10000) {
    char buf[3] = {static_cast<char>(0xE0 | (cp >> 12)),
                   static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
                   static_cast<char>(0x80 | (cp & 0x3F))};
    out->append(buf, 3);
  } else {
    char buf[4] = {
        static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
        static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
    out->append(buf, 4);
  }
}

// Number of code points in valid UTF-8 `text`.
size_t CountCodePoints(std::string_view text);

// The White_Space property, as Rust's char::is_whitespace.
bool IsWhitespace(char32_t cp);
// General category Cc, Cf, Co or Cs (what BertNormalizer's clean_text drops, before its
// exceptions for tab, newline and carriage return).
bool IsOther(char32_t cp);
// ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~) or any P* category.
bool IsBertPunctuation(char32_t cp);
// The CJK ideograph blocks that BERT surrounds with spaces.
bool IsChineseChar(char32_t cp);
// General category Mn.
bool IsNonspacingMark(char32_t cp);
// Letters, marks, decimal digits and connector punctuation: a regex `\w` character.
bool IsWordChar(char32_t cp);
// Canonical combining class (0 for starters).
int CombiningClass(char32_t cp);

// Appends the full lowercase mapping of `cp` (U+0130 becomes "i" + U+0307, as in Rust).
void AppendLowercase(char32_t cp, std::string* out);

// The longest full canonical decomposition of any code point.
inline constexpr size_t kMaxCanonicalDecomposition = 4;

// Writes the full canonical decomposition of `cp` to `out` and returns its length; code points
// without one come back as themselves. Combining marks are not reordered.
size_t DecomposeCanonical(char32_t cp, char32_t (&out)[kMaxCanonicalDecomposition]);

}  // namespace sluice::tokenizer
