#include "tokenizer/post_processor.h"

#include <string>

#include "tokenizer/cls_sep_processing.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/template_processing.h"

namespace sluice::tokenizer {

StatusOr<std::unique_ptr<PostProcessor>> PostProcessor::FromJson(simdjson::dom::element node) {
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(node, "post_processor"));
  SLUICE_ASSIGN_OR_RETURN(std::string_view type, GetType(object, "post_processor"));
  if (type == "TemplateProcessing") {
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<TemplateProcessing> processor,
                            TemplateProcessing::FromJson(object));
    return std::unique_ptr<PostProcessor>(std::move(processor));
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<ClsSepProcessing> processor,
                            ClsSepProcessing::FromJson(object, type));
    return std::unique_ptr<PostProcessor>(std::move(processor));
  }
  return InvalidArgument("unsupported post_processor type \"" + std::string(type) + "\"");
}

}  // namespace sluice::tokenizer
