#include "engine/embedder.h"

#include <string>

namespace sluice {

Embedder::Embedder(const Tokenizer& tokenizer, Backend& backend, EmbedderOptions options)
    : tokenizer_(tokenizer), backend_(backend), options_(options) {}

StatusOr<Encoding> Embedder::Tokenize(std::string_view text) const {
  EncodeOptions encode;
  encode.add_special_tokens = true;
  encode.side = options_.truncation_side;
  if (options_.truncate) {
    encode.max_length = options_.max_seq_length;
  } else {
    encode.limit = options_.max_seq_length;
  }
  return tokenizer_.Encode(text, encode);
}

Status Embedder::Embed(const std::vector<std::string>& texts, std::vector<float>* out) {
  batch_.Clear();
  for (size_t i = 0; i < texts.size(); ++i) {
    StatusOr<Encoding> encoding = Tokenize(texts[i]);
    if (!encoding.ok()) {
      return encoding.status().WithContext("input " + std::to_string(i));
    }
    batch_.Add(encoding->ids, encoding->type_ids, options_.normalize);
  }
  if (texts.empty()) {
    out->clear();
    return Status::Ok();
  }
  return backend_.Embed(batch_, out);
}

}  // namespace sluice
