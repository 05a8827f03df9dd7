#include "tokenizer/decoder.h"

#include <string>

#include "tokenizer/json_fields.h"
#include "tokenizer/word_piece_decoder.h"

namespace sluice::tokenizer {

StatusOr<std::unique_ptr<Decoder>> Decoder::FromJson(simdjson::dom::element node) {
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(node, "decoder"));
  SLUICE_ASSIGN_OR_RETURN(std::string_view type, GetType(object, "decoder"));
  if (type == "WordPiece") {
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<WordPieceDecoder> decoder,
                            WordPieceDecoder::FromJson(object));
    return std::unique_ptr<Decoder>(std::move(decoder));
  }
  return InvalidArgument("unsupported decoder type \"" + std::string(type) + "\"");
}

}  // namespace sluice::tokenizer
