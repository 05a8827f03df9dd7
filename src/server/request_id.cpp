#include "server/request_id.h"

#include <cstdint>
#include <random>

namespace sluice {

std::string RequestIdFor(std::string_view client_id) {
  bool usable = !client_id.empty() && client_id.size() <= 128;
  for (char c : client_id) {
    if (c <= ' ' || c > '~') usable = false;
  }
  if (usable) return std::string(client_id);
  thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t v = rng();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) id[static_cast<size_t>(i)] = kHex[v & 0xf];
  return id;
}

}  // namespace sluice
