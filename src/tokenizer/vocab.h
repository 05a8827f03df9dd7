// Vocab: a token <-> id table. Lookups take string_view without building a std::string.
// Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace sluice::tokenizer {

// Transparent hash so unordered maps keyed by std::string can be probed with string_view.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

template <typename V>
using StringMap = std::unordered_map<std::string, V, StringViewHash, std::equal_to<>>;

class Vocab {
 public:
  static constexpr size_t kMaxId = size_t{1} << 24;

  Vocab() = default;

  // Adds `token` with `id`. InvalidArgument when the token or the id is already present, or
  // the id is negative or not below kMaxId.
  Status Add(std::string_view token, int32_t id);

  std::optional<int32_t> Find(std::string_view token) const {
    auto it = ids_.find(token);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  // The token of `id`, or nullptr.
  const std::string* Token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return nullptr;
    return tokens_[static_cast<size_t>(id)];
  }
  size_t size() const { return ids_.size(); }
  const StringMap<int32_t>& map() const { return ids_; }

 private:
  StringMap<int32_t> ids_;
  // Points at the keys of ids_ (node-based, so they stay put); nullptr for unused ids.
  std::vector<const std::string*> tokens_;
};

}  // namespace sluice::tokenizer
