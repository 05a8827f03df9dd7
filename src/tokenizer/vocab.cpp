#include "tokenizer/vocab.h"

namespace sluice::tokenizer {

Status Vocab::Add(std::string_view token, int32_t id) {
  if (id < 0) return InvalidArgument("negative token id for \"" + std::string(token) + "\"");
  size_t index = static_cast<size_t>(id);
  // Ids index a dense table; real vocabularies stay far below this bound.
  if (index >= kMaxId) return InvalidArgument("token id " + std::to_string(id) + " is too large");
  if (index < tokens_.size() && tokens_[index] != nullptr) {
    return InvalidArgument("token id " + std::to_string(id) + " is used twice");
  }
  auto [it, inserted] = ids_.emplace(std::string(token), id);
  if (!inserted) return InvalidArgument("token \"" + std::string(token) + "\" appears twice");
  if (index >= tokens_.size()) tokens_.resize(index + 1, nullptr);
  tokens_[index] = &it->first;
  return Status::Ok();
}

}  // namespace sluice::tokenizer
