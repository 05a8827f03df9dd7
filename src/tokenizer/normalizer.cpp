#include "tokenizer/normalizer.h"

#include <string>
#include <utility>
#include <vector>

#include "tokenizer/bert_normalizer.h"
#include "tokenizer/json_fields.h"

namespace sluice::tokenizer {
namespace {

// "Sequence": applies its normalizers in order.
class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}

  void Normalize(std::string_view text, std::string* out) const override {
    if (parts_.empty()) {
      out->append(text);
      return;
    }
    std::string current(text);
    std::string next;
    for (size_t i = 0; i + 1 < parts_.size(); ++i) {
      next.clear();
      parts_[i]->Normalize(current, &next);
      current.swap(next);
    }
    parts_.back()->Normalize(current, out);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

StatusOr<std::unique_ptr<Normalizer>> Normalizer::FromJson(simdjson::dom::element node) {
  SLUICE_ASSIGN_OR_RETURN(simdjson::dom::object object, AsObject(node, "normalizer"));
  SLUICE_ASSIGN_OR_RETURN(std::string_view type, GetType(object, "normalizer"));
  if (type == "BertNormalizer") {
    SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<BertNormalizer> bert, BertNormalizer::FromJson(object));
    return std::unique_ptr<Normalizer>(std::move(bert));
  }
  if (type == "Sequence") {
    SLUICE_ASSIGN_OR_RETURN(simdjson::dom::array items,
                            GetArray(object, "normalizers", "Sequence normalizer"));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (simdjson::dom::element item : items) {
      SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<Normalizer> part, FromJson(item));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(std::make_unique<SequenceNormalizer>(std::move(parts)));
  }
  return InvalidArgument("unsupported normalizer type \"" + std::string(type) + "\"");
}

}  // namespace sluice::tokenizer
