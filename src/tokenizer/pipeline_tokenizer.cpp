#include "tokenizer/pipeline_tokenizer.h"

#include <simdjson.h>

#include <limits>
#include <string>
#include <utility>

#include "tokenizer/json_fields.h"
#include "tokenizer/unicode.h"

namespace sluice::tokenizer {

StatusOr<std::unique_ptr<PipelineTokenizer>> PipelineTokenizer::Create(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  if (simdjson::error_code error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    return InvalidArgument(std::string("not valid JSON: ") + simdjson::error_message(error));
  }
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(root, "tokenizer.json"));

  std::unique_ptr<PipelineTokenizer> tokenizer(new PipelineTokenizer());
  std::optional<simdjson::dom::element> model = FindField(object, "model");
  if (!model) return InvalidArgument("tokenizer.json has no \"model\"");
  SLUICE_ASSIGN_OR_RETURN(tokenizer->model_, Model::FromJson(*model));
  if (std::optional<simdjson::dom::element> node = FindField(object, "normalizer")) {
    SLUICE_ASSIGN_OR_RETURN(tokenizer->normalizer_, Normalizer::FromJson(*node));
  }
  if (std::optional<simdjson::dom::element> node = FindField(object, "pre_tokenizer")) {
    SLUICE_ASSIGN_OR_RETURN(tokenizer->pre_tokenizer_, PreTokenizer::FromJson(*node));
  }
  if (std::optional<simdjson::dom::element> node = FindField(object, "post_processor")) {
    SLUICE_ASSIGN_OR_RETURN(tokenizer->post_processor_, PostProcessor::FromJson(*node));
  }
  if (std::optional<simdjson::dom::element> node = FindField(object, "decoder")) {
    SLUICE_ASSIGN_OR_RETURN(tokenizer->decoder_, Decoder::FromJson(*node));
  }
  if (std::optional<simdjson::dom::element> node = FindField(object, "added_tokens")) {
    SLUICE_ASSIGN_OR_RETURN(simdjson::dom::array tokens, AsArray(*node, "added_tokens"));
    SLUICE_ASSIGN_OR_RETURN(tokenizer->added_,
                            AddedVocabulary::FromJson(tokens, tokenizer->normalizer_.get()));
  }

  tokenizer->vocab_size_ = tokenizer->model_->vocab_size();
  for (const AddedToken& token : tokenizer->added_.tokens()) {
    if (!tokenizer->model_->TokenToId(token.content)) ++tokenizer->vocab_size_;
  }
  return tokenizer;
}

StatusOr<Encoding> PipelineTokenizer::Encode(std::string_view text,
                                             const EncodeOptions& options) const {
  if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
    return InvalidArgument("text is not valid UTF-8 (byte " + std::to_string(*bad) + ")");
  }
  const bool add_special = options.add_special_tokens && post_processor_ != nullptr;
  const size_t num_special = add_special ? post_processor_->num_added_single() : 0;

  // How many content ids are allowed, and whether going over is an error or a cut.
  size_t budget = std::numeric_limits<size_t>::max();
  if (options.max_length) {
    if (*options.max_length < num_special) {
      return InvalidArgument("max_length " + std::to_string(*options.max_length) +
                             " leaves no room for the " + std::to_string(num_special) +
                             " special tokens");
    }
    budget = *options.max_length - num_special;
  } else if (options.limit > 0) {
    if (options.limit < num_special) {
      return TooLarge("the limit of " + std::to_string(options.limit) +
                      " tokens leaves no room for the special tokens");
    }
    budget = options.limit - num_special;
  }
  // Right truncation and the limit only need to know that the budget is exceeded; left
  // truncation keeps the end, so everything is encoded.
  const bool keep_end = options.max_length && options.side == TruncationSide::kLeft;
  const size_t stop_after = keep_end ? std::numeric_limits<size_t>::max() : budget;

  std::vector<int32_t> content;
  content.reserve(text.size() / 4 + 4);
  EncodeContent(text, stop_after, &content);

  if (content.size() > budget) {
    if (!options.max_length) {
      return TooLarge("text has more than " + std::to_string(options.limit) +
                      " tokens (the limit)");
    }
    if (options.side == TruncationSide::kLeft) {
      content.erase(content.begin(), content.end() - static_cast<std::ptrdiff_t>(budget));
    } else {
      content.resize(budget);
    }
  }

  Encoding encoding;
  if (add_special) {
    post_processor_->ProcessSingle(content, &encoding);
  } else {
    encoding.type_ids.assign(content.size(), 0);
    encoding.ids = std::move(content);
  }
  return encoding;
}

void PipelineTokenizer::EncodeContent(std::string_view text, size_t stop_after,
                                      std::vector<int32_t>* ids) const {
  std::vector<AddedVocabulary::Segment> raw_segments;
  added_.Split(text, /*raw=*/true, &raw_segments);
  std::string normalized;
  std::vector<AddedVocabulary::Segment> segments;
  WordList words;
  for (const AddedVocabulary::Segment& raw : raw_segments) {
    if (raw.id >= 0) {
      ids->push_back(raw.id);
      if (ids->size() > stop_after) return;
      continue;
    }
    std::string_view normalized_text = raw.text;
    if (normalizer_ != nullptr) {
      normalized.clear();
      normalizer_->Normalize(raw.text, &normalized);
      normalized_text = normalized;
    }
    segments.clear();
    added_.Split(normalized_text, /*raw=*/false, &segments);
    for (const AddedVocabulary::Segment& segment : segments) {
      if (segment.id >= 0) {
        ids->push_back(segment.id);
        if (ids->size() > stop_after) return;
        continue;
      }
      words.Clear();
      if (pre_tokenizer_ != nullptr) {
        pre_tokenizer_->PreTokenize(segment.text, &words);
      } else {
        words.Add(segment.text);
      }
      for (std::string_view word : words.words()) {
        model_->Tokenize(word, ids);
        if (ids->size() > stop_after) return;
      }
    }
  }
}

StatusOr<std::string> PipelineTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* added = added_.FindById(id)) {
      if (!added->special) tokens.push_back(added->content);
      continue;
    }
    const std::string* token = model_->IdToToken(id);
    if (token == nullptr) {
      return InvalidArgument("token id " + std::to_string(id) + " is not in the vocabulary");
    }
    tokens.push_back(*token);
  }
  std::string text;
  if (decoder_ != nullptr) {
    decoder_->DecodeChain(&tokens);
    for (const std::string& piece : tokens) text += piece;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text += tokens[i];
    }
  }
  return text;
}

std::optional<int32_t> PipelineTokenizer::TokenToId(std::string_view token) const {
  if (std::optional<int32_t> id = added_.TokenToId(token)) return id;
  return model_->TokenToId(token);
}

std::optional<std::string> PipelineTokenizer::IdToToken(int32_t id) const {
  if (const AddedToken* added = added_.FindById(id)) return added->content;
  if (const std::string* token = model_->IdToToken(id)) return *token;
  return std::nullopt;
}

size_t PipelineTokenizer::num_special_tokens_single() const {
  return post_processor_ != nullptr ? post_processor_->num_added_single() : 0;
}

}  // namespace sluice::tokenizer
