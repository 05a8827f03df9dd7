// PipelineTokenizer: the Tokenizer built from a tokenizer.json. Added tokens are cut out of the
// text first; every other run goes normalizer -> pre-tokenizer -> model, and the post-processor
// adds the special tokens. Thread-safety: immutable after creation; Encode() and Decode() may
// run on many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/decoder.h"
#include "tokenizer/model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace sluice::tokenizer {

class PipelineTokenizer final : public Tokenizer {
 public:
  // Parses a tokenizer.json document. Its "truncation" and "padding" sections are ignored:
  // callers choose truncation per call with EncodeOptions.
  static StatusOr<std::unique_ptr<PipelineTokenizer>> Create(std::string_view json);

  StatusOr<Encoding> Encode(std::string_view text, const EncodeOptions& options) const override;
  StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const override;

  size_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> TokenToId(std::string_view token) const override;
  std::optional<std::string> IdToToken(int32_t id) const override;
  size_t num_special_tokens_single() const override;

 private:
  PipelineTokenizer() = default;

  // Appends the ids of `text` without special tokens to `*ids`; stops early once there are
  // more than `stop_after` of them.
  void EncodeContent(std::string_view text, size_t stop_after, std::vector<int32_t>* ids) const;

  std::unique_ptr<Normalizer> normalizer_;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer_;  // may be null
  std::unique_ptr<Model> model_;
  std::unique_ptr<PostProcessor> post_processor_;  // may be null
  std::unique_ptr<Decoder> decoder_;               // may be null
  AddedVocabulary added_;
  size_t vocab_size_ = 0;
};

}  // namespace sluice::tokenizer
