// PreTokenizer: splits normalized text into the words the model tokenizes one by one
// (tokenizer.json "pre_tokenizer"). Implementations are immutable and thread-safe.
#pragma once

#include <simdjson.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::tokenizer {

// The words of one text. Words are views into the text being split, or into text a
// pre-tokenizer rewrote (byte-level or metaspace mapping), which the list then owns.
class WordList {
 public:
  void Add(std::string_view word) { words_.push_back(word); }
  // Keeps `text` alive as long as the list and returns a view of it.
  std::string_view Own(std::string text) {
    owned_.push_back(std::make_unique<std::string>(std::move(text)));
    return *owned_.back();
  }
  void Clear() {
    words_.clear();
    owned_.clear();
  }
  // Takes over the text `other` owns (its words may point into it), leaving it empty.
  void AdoptStorage(WordList* other) {
    for (auto& text : other->owned_) owned_.push_back(std::move(text));
    other->Clear();
  }

  const std::vector<std::string_view>& words() const { return words_; }
  size_t size() const { return words_.size(); }

 private:
  std::vector<std::string_view> words_;
  std::vector<std::unique_ptr<std::string>> owned_;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;

  // Appends the words of `text` to `words`. REQUIRES: `text` is valid UTF-8 and outlives the
  // use of `words`.
  virtual void PreTokenize(std::string_view text, WordList* words) const = 0;

  // Builds the pre-tokenizer a tokenizer.json "pre_tokenizer" node describes
  // (BertPreTokenizer, WhitespaceSplit, or a Sequence of them). InvalidArgument
  // names an unsupported "type".
  static StatusOr<std::unique_ptr<PreTokenizer>> FromJson(simdjson::dom::element node);
};

}  // namespace sluice::tokenizer
