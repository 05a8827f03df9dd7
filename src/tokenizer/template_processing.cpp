#include "tokenizer/template_processing.h"

#include <string>
#include <utility>

#include "tokenizer/json_fields.h"
#include "tokenizer/vocab.h"

namespace sluice::tokenizer {
namespace {

constexpr std::string_view kWhat = "TemplateProcessing";

StatusOr<int32_t> ReadTypeId(simdjson::dom::object node) {
  SLUICE_ASSIGN_OR_RETURN(int64_t type_id, GetInt(node, "type_id", kWhat, 0));
  if (type_id < 0 || type_id > 255) {
    return InvalidArgument("TemplateProcessing: type_id must be in [0, 255]");
  }
  return static_cast<int32_t>(type_id);
}

}  // namespace

TemplateProcessing::TemplateProcessing(std::vector<Piece> single) : single_(std::move(single)) {
  for (const Piece& piece : single_) num_added_single_ += piece.ids.size();
}

StatusOr<std::unique_ptr<TemplateProcessing>> TemplateProcessing::FromJson(
    simdjson::dom::object node) {
  // The ids of every special token the templates may name.
  StringMap<std::vector<int32_t>> specials;
  if (std::optional<simdjson::dom::element> field = FindField(node, "special_tokens")) {
    SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object entries,
                            AsObject(*field, "TemplateProcessing special_tokens"));
    for (simdjson::dom::key_value_pair entry : entries) {
      SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object token,
                              AsObject(entry.value, "TemplateProcessing special token"));
      SLUICE_ASSIGN_OR_RETURN(simdjson::dom::array id_array, GetArray(token, "ids", kWhat));
      std::vector<int32_t> ids;
      for (simdjson::dom::element id : id_array) {
        SLUICE_ASSIGN_OR_RETURN(int32_t value, ToTokenId(id, kWhat));
        ids.push_back(value);
      }
      specials.emplace(std::string(entry.key), std::move(ids));
    }
  }

  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::array items, GetArray(node, "single", kWhat));
  std::vector<Piece> single;
  for (simdjson::dom::element item : items) {
    SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(item, "template piece"));
    Piece piece;
    if (std::optional<simdjson::dom::element> seq = FindField(object, "Sequence")) {
      SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object fields, AsObject(*seq, "template Sequence"));
      SLUICE_ASSIGN_OR_RETURN(std::string_view id, GetString(fields, "id", kWhat));
      if (id != "A") {
        return InvalidArgument("TemplateProcessing: the single template may only use sequence A");
      }
      piece.is_sequence = true;
      SLUICE_ASSIGN_OR_RETURN(piece.type_id, ReadTypeId(fields));
    } else if (std::optional<simdjson::dom::element> special = FindField(object, "SpecialToken")) {
      SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object fields,
                              AsObject(*special, "template SpecialToken"));
      SLUICE_ASSIGN_OR_RETURN(std::string_view id, GetString(fields, "id", kWhat));
      auto it = specials.find(id);
      if (it == specials.end()) {
        return InvalidArgument("TemplateProcessing: special token \"" + std::string(id) +
                               "\" is not defined in special_tokens");
      }
      piece.ids = it->second;
      SLUICE_ASSIGN_OR_RETURN(piece.type_id, ReadTypeId(fields));
    } else {
      return InvalidArgument(
          "TemplateProcessing: a template piece must be Sequence or SpecialToken");
    }
    single.push_back(std::move(piece));
  }
  return std::make_unique<TemplateProcessing>(std::move(single));
}

void TemplateProcessing::ProcessSingle(const std::vector<int32_t>& content, Encoding* out) const {
  out->ids.clear();
  out->type_ids.clear();
  out->ids.reserve(content.size() + num_added_single_);
  out->type_ids.reserve(content.size() + num_added_single_);
  for (const Piece& piece : single_) {
    const std::vector<int32_t>& ids = piece.is_sequence ? content : piece.ids;
    out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    out->type_ids.insert(out->type_ids.end(), ids.size(), piece.type_id);
  }
}

}  // namespace sluice::tokenizer
