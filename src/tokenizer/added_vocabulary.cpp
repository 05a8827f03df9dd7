#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <utility>

#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace sluice::tokenizer {
namespace {

// The code point that ends at `end`, and where it starts.
char32_t PreviousCodePoint(std::string_view text, size_t end, size_t* start) {
  size_t pos = end;
  do {
    --pos;
  } while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80);
  *start = pos;
  return DecodeUtf8(text, &pos);
}

bool EndsWithWordChar(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t start;
  return IsWordChar(PreviousCodePoint(text, end, &start));
}

bool StartsWithWordChar(std::string_view text, size_t start) {
  if (start >= text.size()) return false;
  return IsWordChar(DecodeUtf8(text, &start));
}

// Start of the whitespace run that ends at `end`.
size_t WhitespaceStartBefore(std::string_view text, size_t end) {
  while (end > 0) {
    size_t start;
    if (!IsWhitespace(PreviousCodePoint(text, end, &start))) break;
    end = start;
  }
  return end;
}

// End of the whitespace run that starts at `start`.
size_t WhitespaceEndAfter(std::string_view text, size_t start) {
  while (start < text.size()) {
    size_t next = start;
    if (!IsWhitespace(DecodeUtf8(text, &next))) break;
    start = next;
  }
  return start;
}

}  // namespace

StatusOr<AddedVocabulary> AddedVocabulary::Create(std::vector<AddedToken> tokens,
                                                  const Normalizer* normalizer) {
  AddedVocabulary vocab;
  for (AddedToken& token : tokens) {
    if (token.content.empty() || vocab.by_content_.contains(token.content)) continue;
    if (FindInvalidUtf8(token.content)) {
      return InvalidArgument("added_tokens: token content is not valid UTF-8");
    }
    if (token.id < 0) return InvalidArgument("added_tokens: negative id");
    size_t index = vocab.tokens_.size();
    vocab.by_content_.emplace(token.content, index);
    vocab.by_id_.emplace_back(token.id, index);

    Matcher& matcher = token.normalized ? vocab.normalized_ : vocab.raw_;
    std::string pattern = token.content;
    if (token.normalized && normalizer != nullptr) {
      pattern.clear();
      normalizer->Normalize(token.content, &pattern);
    }
    if (!pattern.empty()) {
      auto first = static_cast<unsigned char>(pattern[0]);
      matcher.by_first_byte[first].push_back({std::move(pattern), index});
      matcher.empty = false;
    }
    vocab.tokens_.push_back(std::move(token));
  }
  for (Matcher* matcher : {&vocab.raw_, &vocab.normalized_}) {
    for (auto& bucket : matcher->by_first_byte) {
      std::stable_sort(bucket.begin(), bucket.end(),
                       [](const auto& a, const auto& b) { return a.text.size() > b.text.size(); });
    }
  }
  std::sort(vocab.by_id_.begin(), vocab.by_id_.end());
  return vocab;
}

StatusOr<AddedVocabulary> AddedVocabulary::FromJson(simdjson::dom::array node,
                                                    const Normalizer* normalizer) {
  constexpr std::string_view kWhat = "added_tokens";
  std::vector<AddedToken> tokens;
  for (simdjson::dom::element item : node) {
    SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(item, "added token"));
    AddedToken token;
    SLUICE_ASSIGN_OR_RETURN(std::string_view content, GetString(object, "content", kWhat));
    token.content = std::string(content);
    std::optional<simdjson::dom::element> id = FindField(object, "id");
    if (!id) return InvalidArgument("added_tokens: field \"id\" is missing");
    SLUICE_ASSIGN_OR_RETURN(token.id, ToTokenId(*id, kWhat));
    SLUICE_ASSIGN_OR_RETURN(token.single_word, GetBool(object, "single_word", kWhat, false));
    SLUICE_ASSIGN_OR_RETURN(token.lstrip, GetBool(object, "lstrip", kWhat, false));
    SLUICE_ASSIGN_OR_RETURN(token.rstrip, GetBool(object, "rstrip", kWhat, false));
    SLUICE_ASSIGN_OR_RETURN(token.special, GetBool(object, "special", kWhat, false));
    // Special tokens are not normalized unless the file says so.
    SLUICE_ASSIGN_OR_RETURN(token.normalized, GetBool(object, "normalized", kWhat, !token.special));
    tokens.push_back(std::move(token));
  }
  return Create(std::move(tokens), normalizer);
}

void AddedVocabulary::Split(std::string_view text, bool raw, std::vector<Segment>* out) const {
  const Matcher& matcher = raw ? raw_ : normalized_;
  if (matcher.empty) {
    if (!text.empty()) out->push_back({text, -1});
    return;
  }
  Split(text, matcher, out);
}

void AddedVocabulary::Split(std::string_view text, const Matcher& matcher,
                            std::vector<Segment>* out) const {
  size_t emitted = 0;  // end of what `out` already covers
  size_t pos = 0;      // where the search for the next match resumes
  while (pos < text.size()) {
    // Leftmost match; at that position, the longest pattern.
    size_t match_start = text.size();
    const Matcher::Pattern* match = nullptr;
    for (size_t p = pos; p < text.size() && match == nullptr; ++p) {
      for (const auto& pattern : matcher.by_first_byte[static_cast<unsigned char>(text[p])]) {
        if (text.substr(p).starts_with(pattern.text)) {
          match = &pattern;
          match_start = p;
          break;
        }
      }
    }
    if (match == nullptr) break;
    size_t start = match_start;
    size_t stop = match_start + match->text.size();
    pos = stop;
    const AddedToken& token = tokens_[match->token];
    if (token.single_word && (EndsWithWordChar(text, start) || StartsWithWordChar(text, stop))) {
      continue;  // inside a word: the text stays as it is
    }
    if (token.lstrip) start = std::max(WhitespaceStartBefore(text, start), emitted);
    if (token.rstrip) stop = WhitespaceEndAfter(text, stop);
    if (emitted < start) out->push_back({text.substr(emitted, start - emitted), -1});
    out->push_back({text.substr(start, stop - start), token.id});
    emitted = stop;
    pos = stop;
  }
  if (emitted < text.size()) out->push_back({text.substr(emitted), -1});
}

std::optional<int32_t> AddedVocabulary::TokenToId(std::string_view content) const {
  auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = std::lower_bound(by_id_.begin(), by_id_.end(), std::make_pair(id, size_t{0}));
  if (it == by_id_.end() || it->first != id) return nullptr;
  return &tokens_[it->second];
}

}  // namespace sluice::tokenizer
