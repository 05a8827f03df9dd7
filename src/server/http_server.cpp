#include "server/http_server.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/strand.hpp>
#include <csignal>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "server/http_server_state.h"
#include "server/http_session.h"

namespace sluice {
namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(const HttpServerOptions& options,
                                                         const Router* router) {
  if (options.io_threads < 1) return InvalidArgument("io_threads must be at least 1");
  auto state = std::make_shared<State>(options, router);
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(options.host, ec);
  if (ec) return InvalidArgument("invalid listen address '" + options.host + "'");
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = state->acceptor;
  std::string where = options.host + ":" + std::to_string(options.port);
  if (acceptor.open(endpoint.protocol(), ec); ec) {
    return Unavailable("cannot open a socket: " + ec.message());
  }
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return Unavailable("cannot set SO_REUSEADDR: " + ec.message());
  }
  if (acceptor.bind(endpoint, ec); ec) {
    return Unavailable("cannot bind " + where + ": " + ec.message());
  }
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Unavailable("cannot listen on " + where + ": " + ec.message());
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(state)));
}

HttpServer::HttpServer(std::shared_ptr<State> state) : state_(std::move(state)) {}

HttpServer::~HttpServer() {
  // Run() has returned (or never ran); drop sessions that never started.
  state_->ioc.stop();
}

uint16_t HttpServer::port() const { return state_->acceptor.local_endpoint().port(); }

void HttpServer::Accept() {
  state_->acceptor.async_accept(
      asio::make_strand(state_->ioc), [this](boost::system::error_code ec, tcp::socket socket) {
        if (state_->stopping.load() || !state_->acceptor.is_open()) return;
        if (ec) {
          // Out of descriptors and similar: log and keep serving the connections we have.
          SLUICE_LOG_WARN("accept failed: {}", ec.message());
        } else {
          boost::system::error_code nodelay_ec;
          socket.set_option(tcp::no_delay(true), nodelay_ec);
          auto session = std::make_shared<HttpSession>(std::move(socket), state_);
          {
            std::lock_guard<std::mutex> lock(state_->mu);
            auto& sessions = state_->sessions;
            if (++state_->accepted % 256 == 0) {
              std::erase_if(sessions, [](const auto& w) { return w.expired(); });
            }
            sessions.push_back(session);
          }
          session->Start();
        }
        Accept();
      });
}

void HttpServer::Run() {
  if (state_->options.handle_signals) {
    state_->signals.emplace(state_->ioc, SIGINT, SIGTERM);
    state_->signals->async_wait([this](boost::system::error_code ec, int signal) {
      if (ec) return;
      SLUICE_LOG_INFO("received signal {}: shutting down", signal);
      Shutdown();
    });
  }
  Accept();
  // The watchdog cuts off requests still running shutdown_grace after a shutdown began, so
  // that a stuck handler cannot keep the process alive.
  std::thread watchdog([state = state_] {
    std::unique_lock<std::mutex> lock(state->mu);
    state->cv.wait(lock, [&] { return state->stopping.load() || state->run_done; });
    if (state->cv.wait_for(lock, state->options.shutdown_grace, [&] { return state->run_done; })) {
      return;
    }
    std::vector<std::weak_ptr<HttpSession>> sessions = state->sessions;
    lock.unlock();
    SLUICE_LOG_WARN("shutdown grace period over; closing the remaining connections");
    for (auto& w : sessions) {
      if (auto s = w.lock()) s->ForceClose();
    }
  });
  std::vector<std::thread> threads;
  for (int i = 1; i < state_->options.io_threads; ++i) {
    threads.emplace_back([this] { state_->ioc.run(); });
  }
  state_->ioc.run();
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->run_done = true;
  }
  state_->cv.notify_all();
  watchdog.join();
}

void HttpServer::Shutdown() {
  asio::post(state_->ioc, [state = state_] {
    if (state->stopping.load()) return;
    std::vector<std::shared_ptr<HttpSession>> live;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      state->stopping.store(true);
      for (auto& w : state->sessions) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    state->cv.notify_all();
    boost::system::error_code ignored;
    state->acceptor.close(ignored);
    if (state->signals) state->signals->cancel(ignored);
    // Idle connections close now; busy ones close after their answer is written.
    for (auto& s : live) s->CloseIfIdle();
  });
}

}  // namespace sluice
