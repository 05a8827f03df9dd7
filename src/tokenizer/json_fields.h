// Typed reads of tokenizer.json fields over simdjson's DOM. Every error is InvalidArgument and
// names the component (`what`, e.g. "normalizer") and the field.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"

namespace sluice::tokenizer {

StatusOr<simdjson::dom::object> AsObject(simdjson::dom::element node, std::string_view what);
StatusOr<simdjson::dom::array> AsArray(simdjson::dom::element node, std::string_view what);

// The field `key`, or nullopt when it is missing or null.
std::optional<simdjson::dom::element> FindField(simdjson::dom::object node, std::string_view key);

StatusOr<std::string_view> GetString(simdjson::dom::object node, std::string_view key,
                                     std::string_view what);
// `fallback` when the field is missing or null.
StatusOr<std::string_view> GetString(simdjson::dom::object node, std::string_view key,
                                     std::string_view what, std::string_view fallback);
StatusOr<bool> GetBool(simdjson::dom::object node, std::string_view key, std::string_view what,
                       bool fallback);
// nullopt when the field is missing or null.
StatusOr<std::optional<bool>> GetOptionalBool(simdjson::dom::object node, std::string_view key,
                                              std::string_view what);
StatusOr<int64_t> GetInt(simdjson::dom::object node, std::string_view key, std::string_view what);
StatusOr<int64_t> GetInt(simdjson::dom::object node, std::string_view key, std::string_view what,
                         int64_t fallback);
StatusOr<simdjson::dom::array> GetArray(simdjson::dom::object node, std::string_view key,
                                        std::string_view what);
StatusOr<simdjson::dom::object> GetObject(simdjson::dom::object node, std::string_view key,
                                          std::string_view what);

// A token id from JSON: a non-negative integer that fits int32_t.
StatusOr<int32_t> ToTokenId(simdjson::dom::element value, std::string_view what);

// The "type" of a component node, e.g. "BertNormalizer".
StatusOr<std::string_view> GetType(simdjson::dom::object node, std::string_view what);

}  // namespace sluice::tokenizer
