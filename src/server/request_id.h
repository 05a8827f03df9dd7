// Request ids: every request gets one (x-request-id), echoed in the response and in logs.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// `client_id` when it is a usable id (1-128 printable ASCII characters without spaces),
// otherwise a new random 16-hex-digit id. Thread-safe.
std::string RequestIdFor(std::string_view client_id);

}  // namespace sluice
