// HttpServer: HTTP/1.1 with keep-alive on Boost.Beast, N I/O threads sharing one io_context.
// Each connection lives on its own strand; handlers answer asynchronously through a Responder.
// Slow or oversized requests are cut off by timeouts and limits without touching other
// connections. Shutdown stops accepting, closes idle connections, lets in-flight requests
// finish (up to shutdown_grace) and returns from Run().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/http_message.h"
#include "server/router.h"

namespace sluice {

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;  // 0 picks a free port (see HttpServer::port())
  int io_threads = 2;
  // A connection with no request in progress is closed after this long.
  std::chrono::milliseconds idle_timeout{60000};
  // From the first byte of a request to the end of its headers.
  std::chrono::milliseconds header_timeout{10000};
  // For the body once the headers are in, and for writing the response.
  std::chrono::milliseconds body_timeout{30000};
  // How long Shutdown waits for in-flight requests before closing them anyway.
  std::chrono::milliseconds shutdown_grace{30000};
  size_t payload_limit = 2 * 1024 * 1024;  // request body bytes (413 beyond)
  size_t header_limit = 16 * 1024;         // request header bytes (431 beyond)
  // Stop gracefully on SIGINT and SIGTERM.
  bool handle_signals = false;
  // Called on an I/O thread as each answer is written (metrics, access logs); may be empty.
  std::function<void(const HttpRequest& request, int status)> on_response;
};

class HttpServer {
 public:
  // Binds and listens on host:port. `router` must outlive the server.
  static StatusOr<std::unique_ptr<HttpServer>> Create(const HttpServerOptions& options,
                                                      const Router* router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound.
  uint16_t port() const;

  // Serves on options.io_threads threads (the caller's among them) until Shutdown() or a
  // handled signal, then returns once every connection has finished.
  void Run();
  // Starts a graceful shutdown. Thread-safe; idempotent.
  void Shutdown();

  struct State;  // shared with connections (http_session.cpp)

 private:
  explicit HttpServer(std::shared_ptr<State> state);
  void Accept();

  std::shared_ptr<State> state_;
};

}  // namespace sluice
