#include "tokenizer/model.h"

#include <string>

#include "tokenizer/json_fields.h"
#include "tokenizer/word_piece.h"

namespace sluice::tokenizer {

StatusOr<std::unique_ptr<Model>> Model::FromJson(simdjson::dom::element node) {
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(node, "model"));
  // Files written by old versions of `tokenizers` leave out the model's "type".
  SLUICE_ASSIGN_OR_RETURN(std::string_view type, GetString(object, "type", "model", "WordPiece"));
  if (type == "WordPiece") {
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<WordPiece> model, WordPiece::FromJson(object));
    return std::unique_ptr<Model>(std::move(model));
  }
  return InvalidArgument("unsupported model type \"" + std::string(type) + "\"");
}

}  // namespace sluice::tokenizer
