#include "server/route_helpers.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace sluice {

StatusOr<SteadyTime> RequestDeadline(const HttpRequest& request, const ApiLimits& limits) {
  std::chrono::milliseconds timeout = limits.request_timeout;
  std::string_view header = request.Header("x-request-timeout-ms");
  if (!header.empty()) {
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), ms);
    if (ec != std::errc() || end != header.data() + header.size() || ms <= 0) {
      return InvalidArgument("x-request-timeout-ms must be a positive integer");
    }
    timeout = std::min(timeout, std::chrono::milliseconds(ms));
  }
  return request.received + timeout;
}

StatusOr<bool> CacheAllowed(const HttpRequest& request) {
  std::string_view header = request.Header("x-sluice-cache");
  if (header.empty()) return true;
  constexpr std::string_view kBypass = "bypass";
  bool bypass = header.size() == kBypass.size() &&
                std::equal(header.begin(), header.end(), kBypass.begin(), [](char a, char b) {
                  return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
                });
  if (!bypass) return InvalidArgument("x-sluice-cache must be 'bypass' when present");
  return false;
}

StatusOr<EmbeddingService*> LoadedService(const ApiContext& context) {
  EmbeddingService* service = context.service.load(std::memory_order_acquire);
  if (service == nullptr) return Unavailable("the model is still loading");
  return service;
}

void AnswerGuarded(const Responder& respond, const std::string& request_id,
                   const std::function<HttpResponse()>& write) {
  try {
    respond(write());
  } catch (const std::exception& e) {
    SLUICE_LOG_ERROR("request {}: exception while answering: {}", request_id, e.what());
    respond(ErrorResponse(500, "internal", "internal error (request id " + request_id + ")"));
  } catch (...) {
    SLUICE_LOG_ERROR("request {}: unknown exception while answering", request_id);
    respond(ErrorResponse(500, "internal", "internal error (request id " + request_id + ")"));
  }
}

}  // namespace sluice
