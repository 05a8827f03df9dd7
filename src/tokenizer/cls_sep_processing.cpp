#include "tokenizer/cls_sep_processing.h"

#include <string>

#include "tokenizer/json_fields.h"

namespace sluice::tokenizer {
namespace {

// A ["token", id] pair.
StatusOr<int32_t> ReadTokenPair(simdjson::dom::object node, std::string_view key,
                                std::string_view what) {
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::array pair, GetArray(node, key, what));
  std::string_view token;
  simdjson::dom::element id;
  if (pair.size() != 2 || pair.at(0).get_string().get(token) != simdjson::SUCCESS ||
      pair.at(1).get(id) != simdjson::SUCCESS) {
    return InvalidArgument(std::string(what) + ": \"" + std::string(key) +
                           "\" must be a [token, id] pair");
  }
  return ToTokenId(id, what);
}

}  // namespace

StatusOr<std::unique_ptr<ClsSepProcessing>> ClsSepProcessing::FromJson(simdjson::dom::object node,
                                                                       std::string_view type) {
  SLUICE_ASSIGN_OR_RETURN(int32_t cls_id, ReadTokenPair(node, "cls", type));
  SLUICE_ASSIGN_OR_RETURN(int32_t sep_id, ReadTokenPair(node, "sep", type));
  return std::make_unique<ClsSepProcessing>(cls_id, sep_id);
}

void ClsSepProcessing::ProcessSingle(const std::vector<int32_t>& content, Encoding* out) const {
  out->ids.clear();
  out->ids.reserve(content.size() + 2);
  out->ids.push_back(cls_id_);
  out->ids.insert(out->ids.end(), content.begin(), content.end());
  out->ids.push_back(sep_id_);
  out->type_ids.assign(out->ids.size(), 0);
}

}  // namespace sluice::tokenizer
