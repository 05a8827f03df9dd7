// HttpSession: one HTTP/1.1 connection of the HttpServer: reads requests under timeouts and
// limits, dispatches them, watches for the client leaving while a handler runs, writes the
// answers in order. Lives on its connection's strand; owned by its pending operations.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>

#include "server/http_message.h"
#include "server/http_server.h"

namespace sluice {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<HttpServer::State> server);

  // Starts reading the first request.
  void Start();
  // Closes the connection now unless a request is in progress (that one closes after its
  // answer). Called on shutdown; posts itself onto the connection's strand.
  void CloseIfIdle();
  // Closes the connection now, request or not.
  void ForceClose();

 private:
  void WaitForRequest();
  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void SendContinue();
  void ReadBody();
  void OnBody(boost::beast::error_code ec);
  void Dispatch();
  void WatchForDisconnect();
  // Writes `response` for the current request (on the strand).
  void Send(HttpResponse response);
  // Answers an error found while reading and closes, since the stream cannot be resynchronised.
  void Reject(int status, std::string_view code, std::string_view message);
  void LingerClose();
  void Close();

  boost::beast::tcp_stream stream_;
  std::shared_ptr<HttpServer::State> server_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  // The request being handled (between Dispatch and the end of its write).
  std::shared_ptr<HttpRequest> request_;
  bool keep_alive_ = true;
  bool busy_ = false;  // a request is being read, handled or answered
  bool closed_ = false;
  bool linger_ = false;     // drain the client's unread bytes before closing
  bool lingering_ = false;  // the drain has started
  // Keeps Run() from returning while a handler elsewhere still owes this connection an answer.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
};

}  // namespace sluice
