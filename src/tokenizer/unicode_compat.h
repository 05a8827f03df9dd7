// Where Hugging Face `tokenizers` (0.23) and utf8proc 2.8 (Unicode 15.0) disagree about a code
// point. `tokenizers` takes general categories from an older Unicode (the unicode_categories
// crate) and case mappings from a newer one (Rust's std); these tables list every difference,
// found by comparing both over all code points, so that sluice encodes as `tokenizers` does.
#pragma once

namespace sluice::tokenizer::compat {

// P* to utf8proc but not punctuation to `tokenizers`, and the reverse.
bool NotPunctuation(char32_t cp);
bool ExtraPunctuation(char32_t cp);
// Mn to utf8proc but not to `tokenizers`, and the reverse.
bool NotNonspacingMark(char32_t cp);
bool ExtraNonspacingMark(char32_t cp);
// Cf to utf8proc but kept by the clean-up of `tokenizers`.
bool NotOther(char32_t cp);
// Has a canonical combining class in Unicode 15.0 but is a starter to `tokenizers`.
bool NoCombiningClass(char32_t cp);
// Has a canonical decomposition in Unicode 15.0 that `tokenizers` does not apply.
bool NoDecomposition(char32_t cp);
// The lowercase of `cp` in Unicode 16 where utf8proc has none, else 0.
char32_t ExtraLowercase(char32_t cp);

}  // namespace sluice::tokenizer::compat
