#include "server/router.h"

#include <utility>

#include "common/check.h"
#include "server/http_status.h"

namespace sluice {

void Router::Handle(const std::string& method, const std::string& path, HttpHandler handler) {
  bool inserted = routes_[path].emplace(method, std::move(handler)).second;
  SLUICE_CHECK(inserted) << "route registered twice: " << method << " " << path;
}

void Router::HandlePrefix(const std::string& method, const std::string& prefix,
                          HttpHandler handler) {
  bool inserted = prefixes_[prefix].emplace(method, std::move(handler)).second;
  SLUICE_CHECK(inserted) << "route registered twice: " << method << " " << prefix << "*";
}

void Router::Dispatch(const HttpRequest& request, const Responder& respond) const {
  auto route = routes_.find(request.path);
  if (route == routes_.end()) {
    route = prefixes_.end();
    for (auto it = prefixes_.begin(); it != prefixes_.end(); ++it) {
      if (request.path.size() > it->first.size() && request.path.starts_with(it->first)) {
        route = it;
      }
    }
    if (route == prefixes_.end()) {
      respond(ErrorResponse(404, "not_found", "no route for " + request.path));
      return;
    }
  }
  auto handler = route->second.find(request.method);
  if (handler == route->second.end()) {
    std::string allow;
    for (const auto& [method, h] : route->second) {
      if (!allow.empty()) allow += ", ";
      allow += method;
    }
    HttpResponse r = ErrorResponse(405, "method_not_allowed",
                                   request.method + " is not allowed on " + request.path);
    r.headers.emplace_back("Allow", allow);
    respond(std::move(r));
    return;
  }
  handler->second(request, respond);
}

}  // namespace sluice
