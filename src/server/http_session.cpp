#include "server/http_session.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <exception>
#include <string>
#include <utility>

#include "common/logging.h"
#include "server/http_server_state.h"
#include "server/http_status.h"
#include "server/request_id.h"

namespace sluice {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

HttpSession::HttpSession(tcp::socket socket, std::shared_ptr<HttpServer::State> server)
    : stream_(std::move(socket)), server_(std::move(server)) {}

void HttpSession::Start() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->WaitForRequest(); });
}

void HttpSession::CloseIfIdle() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (!self->busy_) self->Close();
  });
}

void HttpSession::ForceClose() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
}

void HttpSession::WaitForRequest() {
  if (closed_) return;
  if (server_->stopping.load()) {
    Close();
    return;
  }
  if (buffer_.size() > 0) {  // a pipelined request is already here
    ReadHeader();
    return;
  }
  // Idle keep-alive wait: the header timeout starts only with the first byte of a request.
  stream_.expires_after(server_->options.idle_timeout);
  stream_.async_read_some(buffer_.prepare(4096),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            if (ec) {
                              self->Close();
                              return;
                            }
                            self->buffer_.commit(n);
                            self->ReadHeader();
                          });
}

void HttpSession::ReadHeader() {
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(server_->options.header_limit));
  parser_->body_limit(server_->options.payload_limit);
  stream_.expires_after(server_->options.header_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void HttpSession::OnHeader(beast::error_code ec) {
  if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
    if (ec == beast::error::timeout) {
      SLUICE_LOG_DEBUG("closing a connection whose request headers took too long");
    }
    Close();
    return;
  }
  if (ec == http::error::body_limit) {  // a Content-Length over the limit
    Reject(413, "payload_too_large",
           "request body is over the limit of " + std::to_string(server_->options.payload_limit) +
               " bytes");
    return;
  }
  if (ec == http::error::header_limit) {
    Reject(431, "headers_too_large", "request headers are too large");
    return;
  }
  if (ec) {
    Reject(400, "bad_request", "malformed HTTP request: " + ec.message());
    return;
  }
  busy_ = true;
  auto& header = parser_->get();
  if (beast::iequals(header[http::field::expect], "100-continue")) {
    SendContinue();
    return;
  }
  ReadBody();
}

void HttpSession::SendContinue() {
  auto response = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                     parser_->get().version());
  stream_.expires_after(server_->options.body_timeout);
  http::async_write(stream_, *response,
                    [self = shared_from_this(), response](beast::error_code ec, size_t) {
                      if (ec) {
                        self->Close();
                        return;
                      }
                      self->ReadBody();
                    });
}

void HttpSession::ReadBody() {
  stream_.expires_after(server_->options.body_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void HttpSession::OnBody(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    Reject(413, "payload_too_large",
           "request body is over the limit of " + std::to_string(server_->options.payload_limit) +
               " bytes");
    return;
  }
  if (ec == beast::error::timeout) {
    Reject(408, "request_timeout", "the request body took too long to arrive");
    return;
  }
  if (ec) {
    Close();
    return;
  }
  Dispatch();
}

void HttpSession::Dispatch() {
  auto& message = parser_->get();
  auto request = std::make_shared<HttpRequest>();
  request->received = std::chrono::steady_clock::now();
  request->method = std::string(View(message.method_string()));
  std::string_view target(message.target().data(), message.target().size());
  size_t q = target.find('?');
  request->path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) request->query = std::string(target.substr(q + 1));
  for (const auto& field : message) {
    request->headers.emplace_back(Lower(View(field.name_string())),
                                  std::string(View(field.value())));
  }
  request->request_id = RequestIdFor(request->Header("x-request-id"));
  request->body = std::move(message.body());
  keep_alive_ = message.keep_alive();
  request_ = request;
  parser_.reset();

  work_.emplace(server_->ioc.get_executor());
  stream_.expires_never();
  WatchForDisconnect();

  // The first call wins; later calls (a handler answering twice, the catch-all below after a
  // handler already answered) are dropped.
  auto answered = std::make_shared<std::atomic<bool>>(false);
  Responder respond = [self = shared_from_this(), answered](HttpResponse response) {
    if (answered->exchange(true)) return;
    asio::post(self->stream_.get_executor(),
               [self, r = std::move(response)]() mutable { self->Send(std::move(r)); });
  };
  try {
    server_->router->Dispatch(*request, respond);
  } catch (const std::exception& e) {
    SLUICE_LOG_ERROR("request {} {} {}: unhandled exception: {}", request->request_id,
                     request->method, request->path, e.what());
    respond(
        ErrorResponse(500, "internal", "internal error (request id " + request->request_id + ")"));
  } catch (...) {
    SLUICE_LOG_ERROR("request {} {} {}: unhandled non-standard exception", request->request_id,
                     request->method, request->path);
    respond(
        ErrorResponse(500, "internal", "internal error (request id " + request->request_id + ")"));
  }
}

void HttpSession::WatchForDisconnect() {
  // While the handler runs nothing reads the socket, so a client that goes away would only be
  // noticed when the answer is written. Waiting for readability catches the EOF early.
  stream_.socket().async_wait(
      tcp::socket::wait_read,
      asio::bind_executor(
          stream_.get_executor(), [self = shared_from_this()](beast::error_code ec) {
            if (ec || !self->request_ || self->closed_) return;
            // The peek must never block the strand: a readiness report with no data behind it
            // would otherwise hold the connection (and this I/O thread) until the client gave
            // up waiting for the answer it cannot get.
            char byte;
            beast::error_code peek_ec;
            self->stream_.socket().non_blocking(true, peek_ec);
            size_t n = 0;
            if (!peek_ec) {
              n = self->stream_.socket().receive(asio::buffer(&byte, 1), tcp::socket::message_peek,
                                                 peek_ec);
            }
            if (peek_ec == asio::error::would_block || peek_ec == asio::error::try_again) {
              self->WatchForDisconnect();  // nothing there after all: keep watching
              return;
            }
            if (peek_ec || n == 0) {
              SLUICE_LOG_DEBUG("request {}: client went away", self->request_->request_id);
              self->request_->cancelled->store(true);
            }
            // Otherwise the client pipelined its next request: it is still there; stop watching.
          }));
}

void HttpSession::Send(HttpResponse response) {
  if (closed_ || !request_) return;
  beast::error_code ignored;
  stream_.socket().cancel(ignored);  // ends the disconnect watch
  if (server_->stopping.load()) keep_alive_ = false;

  auto message = std::make_shared<http::response<http::string_body>>();
  message->version(11);
  message->result(static_cast<unsigned>(response.status));
  message->set(http::field::server, "sluice");
  message->set(http::field::content_type, response.content_type);
  message->set("x-request-id", request_->request_id);
  for (auto& [name, value] : response.headers) message->set(name, value);
  message->body() = std::move(response.body);
  message->keep_alive(keep_alive_);
  message->prepare_payload();

  auto elapsed = std::chrono::steady_clock::now() - request_->received;
  double ms = std::chrono::duration<double, std::milli>(elapsed).count();
  if (response.status >= 500) {
    SLUICE_LOG_WARN("{} {} {} {:.2f}ms request_id={}", request_->method, request_->path,
                    response.status, ms, request_->request_id);
  } else {
    SLUICE_LOG_DEBUG("{} {} {} {:.2f}ms request_id={}", request_->method, request_->path,
                     response.status, ms, request_->request_id);
  }

  if (server_->options.on_response) server_->options.on_response(*request_, response.status);

  stream_.expires_after(server_->options.body_timeout);
  http::async_write(stream_, *message,
                    [self = shared_from_this(), message](beast::error_code ec, size_t) {
                      self->request_.reset();
                      self->work_.reset();
                      self->busy_ = false;
                      if (ec) {
                        self->Close();
                      } else if (self->linger_) {
                        self->LingerClose();
                      } else if (!self->keep_alive_) {
                        self->Close();
                      } else {
                        self->WaitForRequest();
                      }
                    });
}

void HttpSession::Reject(int status, std::string_view code, std::string_view message) {
  keep_alive_ = false;
  linger_ = true;
  request_ = std::make_shared<HttpRequest>();
  request_->received = std::chrono::steady_clock::now();
  if (parser_) {
    auto& header = parser_->get();
    request_->method = std::string(View(header.method_string()));
    request_->path = std::string(View(header.target()));
    request_->request_id = RequestIdFor(View(header["x-request-id"]));
  } else {
    request_->request_id = RequestIdFor("");
  }
  parser_.reset();
  busy_ = true;
  Send(ErrorResponse(status, code, message));
}

void HttpSession::LingerClose() {
  // Closing with unread request bytes in the socket makes the kernel send a reset, which can
  // destroy the error answer before the client reads it. Stop sending, then discard what the
  // client still sends for a short while.
  if (!lingering_) {
    lingering_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    // One deadline for the whole drain, so a client that keeps sending cannot hold it open.
    stream_.expires_after(std::chrono::seconds(2));
  }
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(64 * 1024),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) {
                              self->Close();
                              return;
                            }
                            self->LingerClose();
                          });
}

void HttpSession::Close() {
  if (closed_) return;
  closed_ = true;
  if (request_) request_->cancelled->store(true);
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
  work_.reset();
}

}  // namespace sluice
