// Tokenizer: a tokenizer.json (Hugging Face `tokenizers`) compatible text -> ids pipeline:
// normalizer -> pre-tokenizer -> model (WordPiece; BPE and Unigram slot in) -> post-processor.
// Thread-safety: immutable after creation; Encode() may run on many threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

enum class TruncationSide { kRight, kLeft };

struct EncodeOptions {
  bool add_special_tokens = true;
  // When set, the result (special tokens included) is cut to at most this many ids; content
  // tokens are removed from `side`. When unset and the text is longer than `limit`, Encode()
  // fails with TooLarge instead.
  std::optional<size_t> max_length;
  TruncationSide side = TruncationSide::kRight;
  // Refuse (TooLarge) results longer than this when max_length is unset; 0 = no limit.
  size_t limit = 0;
};

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
};

class Tokenizer {
 public:
  // Loads a tokenizer.json. InvalidArgument names the unsupported component when the file uses
  // one sluice does not implement.
  static StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::filesystem::path& path);
  static StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json);

  virtual ~Tokenizer() = default;

  // Encodes one UTF-8 text. InvalidArgument on invalid UTF-8 or a max_length below
  // num_special_tokens_single(); TooLarge past options.limit.
  virtual StatusOr<Encoding> Encode(std::string_view text, const EncodeOptions& options) const = 0;
  // The text of `ids` (special tokens skipped), as HF's decode(skip_special_tokens=True).
  // InvalidArgument for an id outside the vocabulary (HF skips those silently).
  virtual StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const = 0;

  virtual size_t vocab_size() const = 0;
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  virtual std::optional<std::string> IdToToken(int32_t id) const = 0;
  // Ids the post-processor adds around a single sequence (2 for [CLS] x [SEP]).
  virtual size_t num_special_tokens_single() const = 0;
};

}  // namespace sluice
