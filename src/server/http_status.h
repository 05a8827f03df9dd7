// The one place where a Status becomes an HTTP answer: its status code and the JSON error body
// {"error":{"message","type","code"}} that OpenAI clients understand.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "server/http_message.h"

namespace sluice {

// The HTTP status for `code` (kInvalidArgument -> 400, kTooLarge -> 413, ...).
int HttpStatusFor(StatusCode code);

// The OpenAI error "type" for an HTTP status ("invalid_request_error", "server_error", ...).
std::string_view ErrorTypeFor(int http_status);

// A complete error response for `status` (not ok). 429 and 503 carry Retry-After.
HttpResponse ErrorResponse(const Status& status);
// The same with an explicit HTTP status, for errors found by the HTTP layer itself (404, 405).
HttpResponse ErrorResponse(int http_status, std::string_view code, std::string_view message);

}  // namespace sluice
