#include "tokenizer/json_fields.h"

#include <limits>
#include <string>

namespace sluice::tokenizer {
namespace {

Status FieldError(std::string_view what, std::string_view key, std::string_view problem) {
  return InvalidArgument(std::string(what) + ": field \"" + std::string(key) + "\" " +
                         std::string(problem));
}

}  // namespace

StatusOr<simdjson::dom::object> AsObject(simdjson::dom::element node, std::string_view what) {
  simdjson::dom::object object;
  if (node.get_object().get(object) != simdjson::SUCCESS) {
    return InvalidArgument(std::string(what) + " must be a JSON object");
  }
  return object;
}

StatusOr<simdjson::dom::array> AsArray(simdjson::dom::element node, std::string_view what) {
  simdjson::dom::array array;
  if (node.get_array().get(array) != simdjson::SUCCESS) {
    return InvalidArgument(std::string(what) + " must be a JSON array");
  }
  return array;
}

std::optional<simdjson::dom::element> FindField(simdjson::dom::object node, std::string_view key) {
  simdjson::dom::element value;
  if (node.at_key(key).get(value) != simdjson::SUCCESS || value.is_null()) return std::nullopt;
  return value;
}

StatusOr<std::string_view> GetString(simdjson::dom::object node, std::string_view key,
                                     std::string_view what) {
  std::optional<simdjson::dom::element> value = FindField(node, key);
  if (!value) return FieldError(what, key, "is missing");
  std::string_view s;
  if (value->get_string().get(s) != simdjson::SUCCESS) {
    return FieldError(what, key, "must be a string");
  }
  return s;
}

StatusOr<std::string_view> GetString(simdjson::dom::object node, std::string_view key,
                                     std::string_view what, std::string_view fallback) {
  if (!FindField(node, key)) return fallback;
  return GetString(node, key, what);
}

StatusOr<bool> GetBool(simdjson::dom::object node, std::string_view key, std::string_view what,
                       bool fallback) {
  SLUICE_ASSIGN_OR_RETURN(std::optional<bool> value, GetOptionalBool(node, key, what));
  return value.value_or(fallback);
}

StatusOr<std::optional<bool>> GetOptionalBool(simdjson::dom::object node, std::string_view key,
                                              std::string_view what) {
  std::optional<simdjson::dom::element> value = FindField(node, key);
  if (!value) return std::optional<bool>();
  bool b;
  if (value->get_bool().get(b) != simdjson::SUCCESS) {
    return FieldError(what, key, "must be a boolean");
  }
  return std::optional<bool>(b);
}

StatusOr<int64_t> GetInt(simdjson::dom::object node, std::string_view key, std::string_view what) {
  std::optional<simdjson::dom::element> value = FindField(node, key);
  if (!value) return FieldError(what, key, "is missing");
  int64_t i;
  if (value->get_int64().get(i) != simdjson::SUCCESS) {
    return FieldError(what, key, "must be an integer");
  }
  return i;
}

StatusOr<int64_t> GetInt(simdjson::dom::object node, std::string_view key, std::string_view what,
                         int64_t fallback) {
  if (!FindField(node, key)) return fallback;
  return GetInt(node, key, what);
}

StatusOr<simdjson::dom::array> GetArray(simdjson::dom::object node, std::string_view key,
                                        std::string_view what) {
  std::optional<simdjson::dom::element> value = FindField(node, key);
  if (!value) return FieldError(what, key, "is missing");
  simdjson::dom::array array;
  if (value->get_array().get(array) != simdjson::SUCCESS) {
    return FieldError(what, key, "must be an array");
  }
  return array;
}

StatusOr<simdjson::dom::object> GetObject(simdjson::dom::object node, std::string_view key,
                                          std::string_view what) {
  std::optional<simdjson::dom::element> value = FindField(node, key);
  if (!value) return FieldError(what, key, "is missing");
  simdjson::dom::object object;
  if (value->get_object().get(object) != simdjson::SUCCESS) {
    return FieldError(what, key, "must be an object");
  }
  return object;
}

StatusOr<int32_t> ToTokenId(simdjson::dom::element value, std::string_view what) {
  int64_t id;
  if (value.get_int64().get(id) != simdjson::SUCCESS || id < 0 ||
      id > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument(std::string(what) + ": token ids must be integers in [0, 2^31)");
  }
  return static_cast<int32_t>(id);
}

StatusOr<std::string_view> GetType(simdjson::dom::object node, std::string_view what) {
  return GetString(node, "type", what);
}

}  // namespace sluice::tokenizer
