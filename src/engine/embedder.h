// Embedder: texts in, finished vectors out, on one Backend: tokenize (with the model's
// truncation rule), pack one flat Batch, run it. The offline path (`sluice embed`, the table
// vectorizer); the server reaches the same Backend through its batcher instead.
// Thread-safety: one caller at a time (it drives the Backend).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

struct EmbedderOptions {
  size_t max_seq_length = 512;  // tokens, special tokens included
  // Cut longer inputs to max_seq_length (as sentence-transformers does); otherwise they are
  // refused with TooLarge.
  bool truncate = true;
  TruncationSide truncation_side = TruncationSide::kRight;
  bool normalize = true;  // L2-normalise the pooled vectors
};

class Embedder {
 public:
  // Borrows `tokenizer` and `backend`; both must outlive the Embedder.
  Embedder(const Tokenizer& tokenizer, Backend& backend, EmbedderOptions options);

  // InvalidArgument for invalid UTF-8; TooLarge for an over-long text when truncation is off.
  StatusOr<Encoding> Tokenize(std::string_view text) const;

  // Embeds `texts` as one batch; `out` receives texts.size() rows of embedding_dim() floats.
  // A bad text fails the call with its index in the message.
  Status Embed(const std::vector<std::string>& texts, std::vector<float>* out);

  int embedding_dim() const { return backend_.embedding_dim(); }
  const EmbedderOptions& options() const { return options_; }

 private:
  const Tokenizer& tokenizer_;
  Backend& backend_;
  const EmbedderOptions options_;
  Batch batch_;  // reused between calls
};

}  // namespace sluice
