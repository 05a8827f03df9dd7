// Router: maps (method, path) to a handler. Unknown paths get 404; known paths asked with
// another method get 405 with an Allow header. Immutable once serving starts.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "server/http_message.h"

namespace sluice {

class Router {
 public:
  // Registers `handler` for exact `path` and `method`. REQUIRES: not yet registered.
  void Handle(const std::string& method, const std::string& path, HttpHandler handler);

  // Registers `handler` for every path that starts with `prefix` and continues past it (routes
  // with an id in the path: "/v1/jobs/" serves "/v1/jobs/42"). Exact routes are tried first.
  // REQUIRES: not yet registered.
  void HandlePrefix(const std::string& method, const std::string& prefix, HttpHandler handler);

  // Whether `path` is a registered exact route (for metrics labels that must stay bounded).
  bool Has(std::string_view path) const { return routes_.find(path) != routes_.end(); }

  // Runs the matching handler, or answers 404 / 405 itself.
  void Dispatch(const HttpRequest& request, const Responder& respond) const;

 private:
  // path -> method -> handler
  std::map<std::string, std::map<std::string, HttpHandler>, std::less<>> routes_;
  // prefix -> method -> handler
  std::map<std::string, std::map<std::string, HttpHandler>, std::less<>> prefixes_;
};

}  // namespace sluice
