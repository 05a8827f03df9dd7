#include "tokenizer/word_piece_decoder.h"

#include <string_view>
#include <utility>

#include "tokenizer/json_fields.h"

namespace sluice::tokenizer {
namespace {

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  size_t pos = s->find(from);
  if (pos == std::string::npos) return;
  std::string result;
  result.reserve(s->size());
  size_t last = 0;
  while (pos != std::string::npos) {
    result.append(*s, last, pos - last);
    result.append(to);
    last = pos + from.size();
    pos = s->find(from, last);
  }
  result.append(*s, last);
  s->swap(result);
}

// Applied to each token in this order, as `tokenizers` does.
void Cleanup(std::string* token) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
      {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" do not", " don't"},
      {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kRules) ReplaceAll(token, from, to);
}

}  // namespace

StatusOr<std::unique_ptr<WordPieceDecoder>> WordPieceDecoder::FromJson(simdjson::dom::object node) {
  constexpr std::string_view kWhat = "WordPiece decoder";
  SLUICE_ASSIGN_OR_RETURN(std::string_view prefix, GetString(node, "prefix", kWhat, "##"));
  SLUICE_ASSIGN_OR_RETURN(bool cleanup, GetBool(node, "cleanup", kWhat, true));
  return std::make_unique<WordPieceDecoder>(std::string(prefix), cleanup);
}

void WordPieceDecoder::DecodeChain(std::vector<std::string>* tokens) const {
  for (size_t i = 0; i < tokens->size(); ++i) {
    std::string& token = (*tokens)[i];
    if (i != 0) {
      if (token.starts_with(prefix_)) {
        token.erase(0, prefix_.size());
      } else {
        token.insert(token.begin(), ' ');
      }
    }
    if (cleanup_) Cleanup(&token);
  }
}

}  // namespace sluice::tokenizer
