// The JSON request bodies of the HTTP API, parsed with simdjson into native structs. JSON does
// not travel past this point. Every malformed body gives InvalidArgument naming the field.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/embed_inputs.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

enum class EncodingFormat { kFloat, kBase64 };

// POST /v1/embeddings (OpenAI).
struct OpenAiEmbeddingsRequest {
  std::optional<std::string> model;
  EmbedInputs input;
  EncodingFormat encoding_format = EncodingFormat::kFloat;
  std::optional<int> dimensions;
};

// POST /embed (text-embeddings-inference).
struct TeiEmbedRequest {
  EmbedInputs inputs;
  std::optional<bool> normalize;
  std::optional<bool> truncate;
  TruncationSide truncation_direction = TruncationSide::kRight;
};

// POST /tokenize (text-embeddings-inference).
struct TeiTokenizeRequest {
  std::vector<std::string> inputs;
  bool add_special_tokens = true;
};

StatusOr<OpenAiEmbeddingsRequest> ParseOpenAiEmbeddingsRequest(std::string_view body);
StatusOr<TeiEmbedRequest> ParseTeiEmbedRequest(std::string_view body);
StatusOr<TeiTokenizeRequest> ParseTeiTokenizeRequest(std::string_view body);

}  // namespace sluice
