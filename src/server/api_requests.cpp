#include "server/api_requests.h"

#include <fmt/format.h>

#include <simdjson.h>

#include <cstdint>
#include <limits>
#include <string>

namespace sluice {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Parses `body` as one JSON object. The parser is per thread and reused, so its buffers are
// allocated once; the returned object is valid until this thread's next Parse.
StatusOr<object> ParseObject(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  element doc;
  simdjson::error_code err = parser.parse(body.data(), body.size(), true).get(doc);
  if (err == simdjson::UTF8_ERROR) return InvalidArgument("the request body is not valid UTF-8");
  if (err == simdjson::EMPTY) return InvalidArgument("the request body is empty");
  if (err) {
    return InvalidArgument(std::string("the request body is not valid JSON: ") +
                           simdjson::error_message(err));
  }
  object obj;
  if (doc.get(obj)) return InvalidArgument("the request body must be a JSON object");
  return obj;
}

// The field `key`, or nullopt when absent or null.
std::optional<element> Field(const object& obj, std::string_view key) {
  element e;
  if (obj.at_key(key).get(e)) return std::nullopt;
  if (e.is_null()) return std::nullopt;
  return e;
}

StatusOr<std::optional<bool>> BoolField(const object& obj, std::string_view key) {
  std::optional<element> e = Field(obj, key);
  if (!e) return std::optional<bool>();
  bool v;
  if (e->get(v)) return InvalidArgument(fmt::format("'{}' must be a boolean", key));
  return std::optional<bool>(v);
}

StatusOr<std::optional<std::string>> StringField(const object& obj, std::string_view key) {
  std::optional<element> e = Field(obj, key);
  if (!e) return std::optional<std::string>();
  std::string_view v;
  if (e->get(v)) return InvalidArgument(fmt::format("'{}' must be a string", key));
  return std::optional<std::string>(std::string(v));
}

StatusOr<int32_t> TokenId(element e, std::string_view where) {
  int64_t v;
  if (e.get(v) || v < 0 || v > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument(std::string(where) + " must be a non-negative integer token id");
  }
  return static_cast<int32_t>(v);
}

StatusOr<std::vector<int32_t>> TokenArray(array a, const std::string& where) {
  std::vector<int32_t> ids;
  ids.reserve(a.size());
  size_t i = 0;
  for (element e : a) {
    SLUICE_ASSIGN_OR_RETURN(int32_t id, TokenId(e, where + "[" + std::to_string(i) + "]"));
    ids.push_back(id);
    ++i;
  }
  return ids;
}

// A string, an array of strings, an array of token ids, or an array of token-id arrays.
StatusOr<EmbedInputs> ParseInputs(const object& obj, std::string_view key) {
  std::string name(key);
  std::optional<element> e = Field(obj, key);
  if (!e) return InvalidArgument("'" + name + "' is required");
  EmbedInputs inputs;
  std::string_view text;
  if (!e->get(text)) {
    inputs.texts.emplace_back(text);
    return inputs;
  }
  array a;
  if (e->get(a)) {
    return InvalidArgument("'" + name +
                           "' must be a string, an array of strings, an array of token ids "
                           "or an array of token-id arrays");
  }
  if (a.size() == 0) return InvalidArgument("'" + name + "' must not be an empty array");
  element first;
  if (a.at(0).get(first)) return Internal("array without a first element");
  element_type kind = first.type();
  if (kind == element_type::INT64 || kind == element_type::UINT64) {
    inputs.is_tokens = true;
    SLUICE_ASSIGN_OR_RETURN(std::vector<int32_t> ids, TokenArray(a, name));
    inputs.token_ids.push_back(std::move(ids));
    return inputs;
  }
  size_t i = 0;
  for (element item : a) {
    std::string where = name + "[" + std::to_string(i++) + "]";
    if (kind == element_type::STRING) {
      if (item.get(text)) return InvalidArgument("'" + where + "' must be a string like the rest");
      inputs.texts.emplace_back(text);
    } else if (kind == element_type::ARRAY) {
      array ids;
      if (item.get(ids)) {
        return InvalidArgument("'" + where + "' must be an array of token ids like the rest");
      }
      inputs.is_tokens = true;
      SLUICE_ASSIGN_OR_RETURN(std::vector<int32_t> seq, TokenArray(ids, where));
      inputs.token_ids.push_back(std::move(seq));
    } else {
      return InvalidArgument("'" + where + "' must be a string, a token id or an array of ids");
    }
  }
  return inputs;
}

}  // namespace

StatusOr<OpenAiEmbeddingsRequest> ParseOpenAiEmbeddingsRequest(std::string_view body) {
  SLUICE_ASSIGN_OR_RETURN(object obj, ParseObject(body));
  OpenAiEmbeddingsRequest req;
  SLUICE_ASSIGN_OR_RETURN(req.model, StringField(obj, "model"));
  SLUICE_ASSIGN_OR_RETURN(req.input, ParseInputs(obj, "input"));
  SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> format, StringField(obj, "encoding_format"));
  if (format) {
    if (*format == "float") {
      req.encoding_format = EncodingFormat::kFloat;
    } else if (*format == "base64") {
      req.encoding_format = EncodingFormat::kBase64;
    } else {
      return InvalidArgument("'encoding_format' must be \"float\" or \"base64\"");
    }
  }
  if (std::optional<element> dims = Field(obj, "dimensions")) {
    int64_t d;
    if (dims->get(d) || d <= 0 || d > std::numeric_limits<int>::max()) {
      return InvalidArgument("'dimensions' must be a positive integer");
    }
    req.dimensions = static_cast<int>(d);
  }
  return req;
}

StatusOr<TeiEmbedRequest> ParseTeiEmbedRequest(std::string_view body) {
  SLUICE_ASSIGN_OR_RETURN(object obj, ParseObject(body));
  TeiEmbedRequest req;
  SLUICE_ASSIGN_OR_RETURN(req.inputs, ParseInputs(obj, "inputs"));
  SLUICE_ASSIGN_OR_RETURN(req.normalize, BoolField(obj, "normalize"));
  SLUICE_ASSIGN_OR_RETURN(req.truncate, BoolField(obj, "truncate"));
  SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> side,
                          StringField(obj, "truncation_direction"));
  if (side) {
    if (*side == "Right" || *side == "right") {
      req.truncation_direction = TruncationSide::kRight;
    } else if (*side == "Left" || *side == "left") {
      req.truncation_direction = TruncationSide::kLeft;
    } else {
      return InvalidArgument("'truncation_direction' must be \"Left\" or \"Right\"");
    }
  }
  return req;
}

StatusOr<TeiTokenizeRequest> ParseTeiTokenizeRequest(std::string_view body) {
  SLUICE_ASSIGN_OR_RETURN(object obj, ParseObject(body));
  TeiTokenizeRequest req;
  SLUICE_ASSIGN_OR_RETURN(EmbedInputs inputs, ParseInputs(obj, "inputs"));
  if (inputs.is_tokens) return InvalidArgument("'inputs' must be a string or an array of strings");
  req.inputs = std::move(inputs.texts);
  SLUICE_ASSIGN_OR_RETURN(std::optional<bool> special, BoolField(obj, "add_special_tokens"));
  if (special) req.add_special_tokens = *special;
  return req;
}

}  // namespace sluice
