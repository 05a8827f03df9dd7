// Standard base64 (RFC 4648, with padding), for encoding_format=base64 embeddings.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace sluice {

// Appends the base64 text of `bytes` to `out`.
void AppendBase64(std::span<const std::byte> bytes, std::string* out);

}  // namespace sluice
