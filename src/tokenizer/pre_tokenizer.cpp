#include "tokenizer/pre_tokenizer.h"

#include <string>
#include <utility>

#include "tokenizer/bert_pre_tokenizer.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/unicode.h"

namespace sluice::tokenizer {
namespace {

// "WhitespaceSplit": words are the runs of non-whitespace characters.
class WhitespaceSplit final : public PreTokenizer {
 public:
  void PreTokenize(std::string_view text, WordList* words) const override {
    size_t pos = 0;
    size_t start = 0;
    bool in_word = false;
    while (pos < text.size()) {
      size_t at = pos;
      bool space = IsWhitespace(DecodeUtf8(text, &pos));
      if (space && in_word) words->Add(text.substr(start, at - start));
      if (!space && !in_word) start = at;
      in_word = !space;
    }
    if (in_word) words->Add(text.substr(start));
  }
};

// "Sequence": each pre-tokenizer splits the words of the one before.
class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}

  void PreTokenize(std::string_view text, WordList* words) const override {
    if (parts_.empty()) {
      if (!text.empty()) words->Add(text);
      return;
    }
    WordList current;
    parts_[0]->PreTokenize(text, &current);
    for (size_t i = 1; i < parts_.size(); ++i) {
      WordList next;
      for (std::string_view word : current.words()) parts_[i]->PreTokenize(word, &next);
      next.AdoptStorage(&current);
      current = std::move(next);
    }
    for (std::string_view word : current.words()) words->Add(word);
    words->AdoptStorage(&current);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

}  // namespace

StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::FromJson(simdjson::dom::element node) {
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(node, "pre_tokenizer"));
  SLUICE_ASSIGN_OR_RETURN(std::string_view type, GetType(object, "pre_tokenizer"));
  if (type == "BertPreTokenizer") {
    return std::unique_ptr<PreTokenizer>(std::make_unique<BertPreTokenizer>());
  }
  if (type == "WhitespaceSplit") {
    return std::unique_ptr<PreTokenizer>(std::make_unique<WhitespaceSplit>());
  }
  if (type == "Sequence") {
    SLUICE_ASSIGN_OR_RETURN(simdjson::dom::array items,
                            GetArray(object, "pretokenizers", "Sequence pre_tokenizer"));
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (simdjson::dom::element item : items) {
      SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<PreTokenizer> part, FromJson(item));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<PreTokenizer>(std::make_unique<SequencePreTokenizer>(std::move(parts)));
  }
  return InvalidArgument("unsupported pre_tokenizer type \"" + std::string(type) + "\"");
}

}  // namespace sluice::tokenizer
