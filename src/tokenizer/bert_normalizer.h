// BertNormalizer: BERT's text clean-up, as Hugging Face `tokenizers` defines it: drop control
// characters and map whitespace to spaces (clean_text), surround CJK ideographs with spaces
// (handle_chinese_chars), NFD and drop nonspacing marks (strip_accents, which follows
// lowercase when null), then full lowercase mapping (lowercase).
#pragma once

#include <simdjson.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tokenizer/normalizer.h"

namespace sluice::tokenizer {

class BertNormalizer final : public Normalizer {
 public:
  struct Options {
    bool clean_text = true;
    bool handle_chinese_chars = true;
    std::optional<bool> strip_accents;  // nullopt: same as lowercase
    bool lowercase = true;
  };

  explicit BertNormalizer(const Options& options);

  // Reads a {"type": "BertNormalizer", ...} node; missing fields take HF's defaults.
  static StatusOr<std::unique_ptr<BertNormalizer>> FromJson(simdjson::dom::object node);

  void Normalize(std::string_view text, std::string* out) const override;

 private:
  // Appends one code point that survived clean-up and CJK spacing: decomposes it and drops
  // nonspacing marks when stripping accents, then lowercases. Non-starters that are kept wait
  // in `pending` for canonical reordering until the next starter.
  void Emit(char32_t cp, std::u32string* pending, std::string* out) const;
  void Flush(std::u32string* pending, std::string* out) const;
  void AppendCased(char32_t cp, std::string* out) const;

  bool clean_text_;
  bool handle_chinese_chars_;
  bool strip_accents_;
  bool lowercase_;
  // What each ASCII byte becomes after the whole pipeline; -1 when clean-up drops it.
  std::array<int16_t, 128> ascii_;
};

}  // namespace sluice::tokenizer
