// HttpRequest / HttpResponse: the HTTP layer's plain view of one exchange, free of Beast types
// so that routes and their tests do not depend on the transport.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

struct HttpRequest {
  std::string method;                                        // "GET", "POST", ...
  std::string path;                                          // the target without its query
  std::string query;                                         // after '?', undecoded
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  // Echoed from the client's x-request-id when usable, otherwise generated.
  std::string request_id;
  std::chrono::steady_clock::time_point received;
  // Becomes true when the client closes the connection before the answer is sent.
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);

  // The value of header `name` (lower case), or "" when absent.
  std::string_view Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Delivers the response of one request. Callable from any thread; only the first call counts.
using Responder = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, Responder)>;

}  // namespace sluice
