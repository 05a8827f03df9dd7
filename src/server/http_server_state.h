// HttpServer::State: what the server and its connections share. Internal to the HTTP server.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "server/http_server.h"

namespace sluice {

class HttpSession;

struct HttpServer::State {
  State(const HttpServerOptions& opts, const Router* r) : options(opts), router(r), acceptor(ioc) {}

  const HttpServerOptions options;
  const Router* const router;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor;
  std::optional<boost::asio::signal_set> signals;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable cv;                        // stopping or run_done changed
  std::vector<std::weak_ptr<HttpSession>> sessions;  // GUARDED_BY(mu); pruned on accept
  bool run_done = false;                             // GUARDED_BY(mu)
  size_t accepted = 0;                               // GUARDED_BY(mu)
};

}  // namespace sluice
