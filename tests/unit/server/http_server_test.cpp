#include "server/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "test_client.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::TestClient;
using testing::TestResponse;

// A real server on a free port with a few test routes, run on its own thread.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Handle("GET", "/hello", [](const HttpRequest& req, Responder respond) {
      HttpResponse r;
      r.content_type = "text/plain";
      r.body = "hello " + req.request_id;
      respond(std::move(r));
    });
    router_.Handle("POST", "/echo", [](const HttpRequest& req, Responder respond) {
      HttpResponse r;
      r.body = req.body;
      respond(std::move(r));
    });
    router_.Handle("GET", "/throw",
                   [](const HttpRequest&, Responder) { throw std::runtime_error("handler bug"); });
    // Answers from another thread after `slow_ms_`, or 499 as soon as the client has gone.
    router_.Handle("GET", "/slow", [this](const HttpRequest& req, Responder respond) {
      std::thread([this, cancelled = req.cancelled, respond] {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(slow_ms_);
        while (std::chrono::steady_clock::now() < until) {
          if (cancelled->load()) {
            saw_cancel_ = true;
            respond(HttpResponse{499, "text/plain", "gone", {}});
            return;
          }
          std::this_thread::sleep_for(5ms);
        }
        respond(HttpResponse{200, "text/plain", "slow done", {}});
      }).detach();
    });
  }

  void Start(HttpServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    auto server = HttpServer::Create(options, &router_);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    thread_ = std::thread([this] { server_->Run(); });
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown();
      thread_.join();
    }
  }

  uint16_t port() const { return server_->port(); }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int slow_ms_ = 300;
  std::atomic<bool> saw_cancel_{false};
};

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  TestClient c(port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    TestResponse r = c.Request("POST", "/echo", "{\"i\":" + std::to_string(i) + "}");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"i\":" + std::to_string(i) + "}");
    EXPECT_EQ(r.headers["content-type"], "application/json");
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  TestClient c(port());
  std::string one = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n1";
  std::string two = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n2";
  ASSERT_TRUE(c.Send(one + two));
  EXPECT_EQ(c.Read().body, "1");
  EXPECT_EQ(c.Read().body, "2");
}

TEST_F(HttpServerTest, RequestIdIsEchoedOrGenerated) {
  Start();
  TestClient c(port());
  TestResponse mine = c.Request("GET", "/hello", "", "X-Request-Id: abc-123\r\n");
  EXPECT_EQ(mine.headers["x-request-id"], "abc-123");
  EXPECT_EQ(mine.body, "hello abc-123");
  TestResponse generated = c.Request("GET", "/hello");
  EXPECT_EQ(generated.headers["x-request-id"].size(), 16u);
  TestResponse unusable = c.Request("GET", "/hello", "", "X-Request-Id: has space\r\n");
  EXPECT_NE(unusable.headers["x-request-id"], "has space");
}

TEST_F(HttpServerTest, UnknownRouteIs404AndWrongMethodIs405WithAllow) {
  Start();
  TestClient c(port());
  TestResponse missing = c.Request("GET", "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("\"error\""), std::string::npos);
  TestResponse wrong = c.Request("DELETE", "/echo");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["allow"], "POST");
  // The connection is still good.
  EXPECT_EQ(c.Request("GET", "/hello").status, 200);
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500WithTheRequestId) {
  Start();
  TestClient c(port());
  TestResponse r = c.Request("GET", "/throw", "", "X-Request-Id: boom-1\r\n");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("boom-1"), std::string::npos);
  EXPECT_EQ(c.Request("GET", "/hello").status, 200);
}

TEST_F(HttpServerTest, OversizedBodyIs413AndTheServerCarriesOn) {
  HttpServerOptions options;
  options.payload_limit = 1000;
  Start(options);
  {
    TestClient c(port());
    TestResponse r = c.Request("POST", "/echo", std::string(5000, 'x'));
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.headers["connection"], "close");
  }
  {
    // Chunked bodies have no Content-Length to check up front; the limit still holds.
    TestClient c(port());
    std::string chunk(800, 'y');
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", chunk.size());
    std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    req += std::string(size) + "\r\n" + chunk + "\r\n" + size + "\r\n" + chunk + "\r\n0\r\n\r\n";
    ASSERT_TRUE(c.Send(req));
    EXPECT_EQ(c.Read().status, 413);
  }
  TestClient next(port());
  EXPECT_EQ(next.Request("POST", "/echo", "ok").body, "ok");
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  HttpServerOptions options;
  options.header_limit = 1024;
  Start(options);
  TestClient c(port());
  TestResponse r = c.Request("GET", "/hello", "", "X-Big: " + std::string(4000, 'a') + "\r\n");
  EXPECT_EQ(r.status, 431);
  TestClient next(port());
  EXPECT_EQ(next.Request("GET", "/hello").status, 200);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  Start();
  TestClient c(port());
  ASSERT_TRUE(c.Send("THIS IS NOT HTTP\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 400);
}

TEST_F(HttpServerTest, SlowLorisHeadersAreCutOffWithoutDelayingOthers) {
  HttpServerOptions options;
  options.header_timeout = 300ms;
  Start(options);
  TestClient loris(port());
  ASSERT_TRUE(loris.Send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: "));
  auto start = std::chrono::steady_clock::now();
  TestClient other(port());
  EXPECT_EQ(other.Request("GET", "/hello").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms);
  std::this_thread::sleep_for(150ms);
  loris.Send("a");  // trickling bytes does not extend the deadline
  EXPECT_TRUE(loris.ClosedByServer());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  EXPECT_EQ(other.Request("GET", "/hello").status, 200);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  HttpServerOptions options;
  options.idle_timeout = 200ms;
  Start(options);
  TestClient c(port());
  EXPECT_EQ(c.Request("GET", "/hello").status, 200);
  EXPECT_TRUE(c.ClosedByServer());
}

TEST_F(HttpServerTest, ClientDisconnectMidRequestSetsTheCancelFlag) {
  slow_ms_ = 3000;
  Start();
  {
    TestClient c(port());
    ASSERT_TRUE(c.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
    std::this_thread::sleep_for(100ms);
  }  // closes
  for (int i = 0; i < 200 && !saw_cancel_; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(saw_cancel_);
  TestClient next(port());
  EXPECT_EQ(next.Request("GET", "/hello").status, 200);
}

TEST_F(HttpServerTest, ShutdownFinishesInFlightRequestsAndStopsAccepting) {
  slow_ms_ = 300;
  Start();
  TestClient busy(port());
  TestClient idle(port());
  EXPECT_EQ(idle.Request("GET", "/hello").status, 200);
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(50ms);
  server_->Shutdown();
  TestResponse r = busy.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow done");
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(idle.ClosedByServer());
  thread_.join();  // Run() returned
  server_.reset();
  TestClient refused(static_cast<uint16_t>(0));
  EXPECT_FALSE(refused.connected());
}

TEST(HttpServerCreateTest, BadAddressAndBusyPortAreErrors) {
  Router router;
  HttpServerOptions options;
  options.host = "not-an-address";
  EXPECT_EQ(HttpServer::Create(options, &router).status().code(), StatusCode::kInvalidArgument);
  options.host = "127.0.0.1";
  options.port = 0;
  auto first = HttpServer::Create(options, &router);
  ASSERT_TRUE(first.ok());
  options.port = (*first)->port();
  EXPECT_EQ(HttpServer::Create(options, &router).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace sluice
