#include "tokenizer/word_piece.h"

#include <algorithm>
#include <utility>

#include "tokenizer/json_fields.h"
#include "tokenizer/unicode.h"

namespace sluice::tokenizer {
namespace {

// Start of the code point that ends just before `end`. REQUIRES: word[0, end) is valid UTF-8.
size_t PreviousBoundary(std::string_view word, size_t end) {
  do {
    --end;
  } while (end > 0 && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
  return end;
}

}  // namespace

WordPiece::WordPiece(Vocab vocab, Options options, int32_t unk_id)
    : vocab_(std::move(vocab)), options_(std::move(options)), unk_id_(unk_id) {
  const std::string& prefix = options_.continuing_subword_prefix;
  for (const auto& [token, id] : vocab_.map()) {
    max_token_bytes_ = std::max(max_token_bytes_, token.size());
    if (token.size() > prefix.size() && token.starts_with(prefix)) {
      std::string_view rest = std::string_view(token).substr(prefix.size());
      continuations_.emplace(std::string(rest), id);
      max_continuation_bytes_ = std::max(max_continuation_bytes_, rest.size());
    }
  }
}

StatusOr<std::unique_ptr<WordPiece>> WordPiece::Create(Vocab vocab, Options options) {
  std::optional<int32_t> unk_id = vocab.Find(options.unk_token);
  if (!unk_id) {
    return InvalidArgument("WordPiece: unk_token \"" + options.unk_token +
                           "\" is not in the vocab");
  }
  return std::unique_ptr<WordPiece>(new WordPiece(std::move(vocab), std::move(options), *unk_id));
}

StatusOr<std::unique_ptr<WordPiece>> WordPiece::FromJson(simdjson::dom::object node) {
  constexpr std::string_view kWhat = "WordPiece model";
  Options options;
  SLUICE_ASSIGN_OR_RETURN(std::string_view unk, GetString(node, "unk_token", kWhat, "[UNK]"));
  options.unk_token = std::string(unk);
  SLUICE_ASSIGN_OR_RETURN(std::string_view prefix,
                          GetString(node, "continuing_subword_prefix", kWhat, "##"));
  options.continuing_subword_prefix = std::string(prefix);
  SLUICE_ASSIGN_OR_RETURN(int64_t max_chars, GetInt(node, "max_input_chars_per_word", kWhat, 100));
  if (max_chars < 0) {
    return InvalidArgument("WordPiece model: max_input_chars_per_word must not be negative");
  }
  options.max_input_chars_per_word = static_cast<size_t>(max_chars);

  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object entries, GetObject(node, "vocab", kWhat));
  Vocab vocab;
  for (simdjson::dom::key_value_pair entry : entries) {
    SLUICE_ASSIGN_OR_RETURN(int32_t id, ToTokenId(entry.value, kWhat));
    if (FindInvalidUtf8(entry.key))
      return InvalidArgument("WordPiece model: vocab has invalid UTF-8");
    Status added = vocab.Add(entry.key, id);
    if (!added.ok()) return added.WithContext("WordPiece model vocab");
  }
  return Create(std::move(vocab), std::move(options));
}

void WordPiece::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (CountCodePoints(word) > options_.max_input_chars_per_word) {
    ids->push_back(unk_id_);
    return;
  }
  const size_t first = ids->size();
  size_t start = 0;
  while (start < word.size()) {
    const bool continuation = start > 0;
    const size_t longest = continuation ? max_continuation_bytes_ : max_token_bytes_;
    size_t end = word.size();
    // No vocabulary entry is longer than `longest`: start the search at that length.
    if (end - start > longest) {
      end = start + longest;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    }
    std::optional<int32_t> found;
    while (end > start) {
      std::string_view piece = word.substr(start, end - start);
      if (continuation) {
        auto it = continuations_.find(piece);
        if (it != continuations_.end()) found = it->second;
      } else {
        found = vocab_.Find(piece);
      }
      if (found) break;
      end = PreviousBoundary(word, end);
    }
    if (!found) {
      ids->resize(first);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(*found);
    start = end;
  }
}

}  // namespace sluice::tokenizer
