#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "body_source.h"
#include "load_report.h"
#include "load_runner.h"
#include "loadgen_options.h"

namespace sluice::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A small real HTTP/1.1 server on 127.0.0.1 (one thread per connection) whose behaviour the
// tests choose: error statuses, one stalled request, closing after each response.
class TestServer {
 public:
  struct Behavior {
    int fail_every = 0;      // every n-th request answers 503
    int stall_request = -1;  // this request (0-based, server-wide) waits stall before answering
    std::chrono::milliseconds stall{0};
    bool close_each = false;  // answer with Connection: close and hang up
  };

  explicit TestServer(Behavior behavior) : behavior_(behavior), acceptor_(io_) {
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~TestServer() {
    stopping_ = true;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& s : sockets_) ::shutdown(s->native_handle(), SHUT_RDWR);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }
  size_t unique_bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_.size();
  }
  int connections() const { return connections_.load(); }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      auto socket = std::make_shared<tcp::socket>(io_);
      beast::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec) return;
      connections_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(socket);
      threads_.emplace_back([this, socket] { Serve(*socket); });
    }
  }

  void Serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      const int n = requests_.fetch_add(1);
      {
        std::lock_guard<std::mutex> lock(mu_);
        bodies_.insert(req.body());
      }
      if (n == behavior_.stall_request) std::this_thread::sleep_for(behavior_.stall);
      const bool fail = behavior_.fail_every > 0 && n % behavior_.fail_every == 0;
      http::response<http::string_body> res{
          fail ? http::status::service_unavailable : http::status::ok, req.version()};
      res.set(http::field::content_type, "application/json");
      res.body() = fail ? R"({"error":"busy"})" : R"({"data":[]})";
      res.keep_alive(!behavior_.close_each && req.keep_alive());
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || behavior_.close_each) {
        socket.shutdown(tcp::socket::shutdown_send, ec);
        return;
      }
    }
  }

  const Behavior behavior_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;  // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;                   // GUARDED_BY(mu_)
  std::set<std::string> bodies_;                       // GUARDED_BY(mu_)
};

LoadgenOptions OptionsFor(uint16_t port) {
  LoadgenOptions o;
  o.target = Target{"127.0.0.1", port, "/v1/embeddings"};
  o.timeout_s = 5;
  return o;
}

LoadReport MustRun(const LoadgenOptions& options) {
  StatusOr<LoadReport> report = LoadRunner::Run(options);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? std::move(report).value() : LoadReport{};
}

TEST(LoadRunnerTest, OpenLoopKeepsTheOfferedRate) {
  TestServer server({});
  LoadgenOptions o = OptionsFor(server.port());
  o.rate = 200;
  o.duration_s = 1;
  o.warmup_s = 0.2;
  o.connections = 4;
  o.threads = 2;
  const LoadReport r = MustRun(o);
  // 200 requests are due in the window; each thread's schedule may round by one.
  EXPECT_GE(r.responses, 198u);
  EXPECT_LE(r.responses, 202u);
  EXPECT_EQ(r.sent, r.responses);
  EXPECT_EQ(r.status_counts.at(200), r.responses);
  EXPECT_EQ(r.error_count(), 0u);
  EXPECT_EQ(r.latency.count, r.responses);
  EXPECT_NEAR(r.achieved_rps, 200, 3);
  EXPECT_LT(r.latency.p50_ms, 50);
  EXPECT_LE(r.latency.p50_ms, r.latency.p99_ms);
  EXPECT_LE(r.latency.p99_ms, r.latency.max_ms);
  // Warm-up requests were sent too, and keep-alive reused the connections.
  EXPECT_GE(server.requests(), 238);
  EXPECT_EQ(server.connections(), 4);
}

TEST(LoadRunnerTest, LatencyCountsFromTheIntendedSendTime) {
  // One connection, one request stalled for 300 ms: the ~30 requests due meanwhile queue
  // behind it. Measured from their due time, about 20 of them wait over 100 ms; a generator
  // that measured from the actual send would report only one slow request.
  TestServer server({.stall_request = 30, .stall = 300ms});
  LoadgenOptions o = OptionsFor(server.port());
  o.rate = 100;
  o.duration_s = 1;
  o.connections = 1;
  const LoadReport r = MustRun(o);
  EXPECT_GE(r.responses, 99u);
  EXPECT_GE(r.latency.max_ms, 290);
  EXPECT_GE(r.latency.p90_ms, 100);
  EXPECT_LT(r.latency.p50_ms, 50);
}

TEST(LoadRunnerTest, ClosedLoopCountsErrorsByStatus) {
  TestServer server({.fail_every = 4});
  LoadgenOptions o = OptionsFor(server.port());
  o.closed_loop = true;
  o.duration_s = 0.5;
  o.connections = 2;
  const LoadReport r = MustRun(o);
  ASSERT_GT(r.responses, 100u);
  const uint64_t ok = r.status_counts.at(200);
  const uint64_t busy = r.status_counts.at(503);
  EXPECT_EQ(ok + busy, r.responses);
  EXPECT_NEAR(static_cast<double>(busy) / r.responses, 0.25, 0.05);
  EXPECT_EQ(r.non_2xx(), busy);
  EXPECT_EQ(r.latency.count, ok);  // latency covers successes only
  EXPECT_EQ(r.errors.count("io"), 0u);
}

TEST(LoadRunnerTest, UniqueBodiesForceDistinctInputs) {
  TestServer server({});
  LoadgenOptions o = OptionsFor(server.port());
  o.closed_loop = true;
  o.duration_s = 0.3;
  o.connections = 4;
  o.threads = 2;
  o.unique = true;
  MustRun(o);
  ASSERT_GT(server.requests(), 10);
  EXPECT_EQ(server.unique_bodies(), static_cast<size_t>(server.requests()));
}

TEST(LoadRunnerTest, FixedBodyRepeats) {
  TestServer server({});
  LoadgenOptions o = OptionsFor(server.port());
  o.rate = 50;
  o.duration_s = 0.2;
  o.connections = 2;
  MustRun(o);
  ASSERT_GT(server.requests(), 5);
  EXPECT_EQ(server.unique_bodies(), 1u);
}

TEST(LoadRunnerTest, ReconnectsWhenTheServerClosesEachConnection) {
  TestServer server({.close_each = true});
  LoadgenOptions o = OptionsFor(server.port());
  o.closed_loop = true;
  o.duration_s = 0.3;
  o.connections = 2;
  const LoadReport r = MustRun(o);
  EXPECT_GT(r.responses, 10u);
  EXPECT_EQ(r.error_count(), 0u);
  EXPECT_GE(server.connections(), static_cast<int>(r.responses));
}

TEST(LoadRunnerTest, UnreachableTargetIsCountedNotFatal) {
  uint16_t port = 0;
  {
    asio::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }  // closed again: nothing listens there now
  LoadgenOptions o = OptionsFor(port);
  o.rate = 100;
  o.duration_s = 0.3;
  o.connections = 2;
  o.timeout_s = 0.2;
  const LoadReport r = MustRun(o);
  EXPECT_EQ(r.responses, 0u);
  EXPECT_GT(r.errors.at("connect"), 0u);
  EXPECT_GT(r.errors.at("unsent"), 20u);
}

TEST(LoadRunnerTest, InvalidOptionsAreRefused) {
  LoadgenOptions o = OptionsFor(1);
  EXPECT_EQ(LoadRunner::Run(o).status().code(), StatusCode::kInvalidArgument);
}

struct UrlCase {
  std::string url;
  bool ok;
  std::string host;
  uint16_t port;
  std::string path;
};

class ParseTargetTest : public ::testing::TestWithParam<UrlCase> {};

TEST_P(ParseTargetTest, Parses) {
  const UrlCase& c = GetParam();
  StatusOr<Target> t = ParseTarget(c.url);
  ASSERT_EQ(t.ok(), c.ok) << c.url << ": " << t.status().ToString();
  if (!c.ok) {
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    return;
  }
  EXPECT_EQ(t->host, c.host);
  EXPECT_EQ(t->port, c.port);
  EXPECT_EQ(t->path, c.path);
}

INSTANTIATE_TEST_SUITE_P(
    Urls, ParseTargetTest,
    ::testing::Values(
        UrlCase{"127.0.0.1:8080/v1/embeddings", true, "127.0.0.1", 8080, "/v1/embeddings"},
        UrlCase{"http://localhost:9000/embed", true, "127.0.0.1", 9000, "/embed"},
        UrlCase{"http://127.0.0.1", true, "127.0.0.1", 80, "/"},
        UrlCase{"[::1]:8080/x?y=1", true, "::1", 8080, "/x?y=1"},
        UrlCase{"127.1.2.3:81", true, "127.1.2.3", 81, "/"},
        UrlCase{"10.0.0.1:8080/", false, "", 0, ""}, UrlCase{"example.com:80/", false, "", 0, ""},
        UrlCase{"https://127.0.0.1:8443/", false, "", 0, ""},
        UrlCase{"127.0.0.1:0/", false, "", 0, ""}, UrlCase{"127.0.0.1:70000/", false, "", 0, ""},
        UrlCase{"127.0.0.1:80x/", false, "", 0, ""}, UrlCase{"127.0.0.1:/", false, "", 0, ""},
        UrlCase{"user@127.0.0.1:80/", false, "", 0, ""}, UrlCase{"[::1/", false, "", 0, ""},
        UrlCase{"/path", false, "", 0, ""}, UrlCase{"", false, "", 0, ""}));

struct OptionsCase {
  std::string name;
  void (*mutate)(LoadgenOptions&);
  std::string message;  // empty: valid
};

class ValidateOptionsTest : public ::testing::TestWithParam<OptionsCase> {};

TEST_P(ValidateOptionsTest, Validates) {
  LoadgenOptions o = OptionsFor(8080);
  o.rate = 10;
  GetParam().mutate(o);
  const Status s = ValidateOptions(o);
  if (GetParam().message.empty()) {
    EXPECT_TRUE(s.ok()) << s.ToString();
  } else {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(GetParam().message), std::string::npos) << s.message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ValidateOptionsTest,
    ::testing::Values(
        OptionsCase{"open_ok", [](LoadgenOptions&) {}, ""},
        OptionsCase{"closed_ok",
                    [](LoadgenOptions& o) {
                      o.rate = 0;
                      o.closed_loop = true;
                    },
                    ""},
        OptionsCase{"neither", [](LoadgenOptions& o) { o.rate = 0; }, "exactly one"},
        OptionsCase{"both", [](LoadgenOptions& o) { o.closed_loop = true; }, "exactly one"},
        OptionsCase{"zero_duration", [](LoadgenOptions& o) { o.duration_s = 0; }, "--duration"},
        OptionsCase{"negative_warmup", [](LoadgenOptions& o) { o.warmup_s = -1; }, "--warmup"},
        OptionsCase{"zero_timeout", [](LoadgenOptions& o) { o.timeout_s = 0; }, "--timeout"},
        OptionsCase{"zero_threads", [](LoadgenOptions& o) { o.threads = 0; }, "--threads"},
        OptionsCase{"fewer_connections_than_threads",
                    [](LoadgenOptions& o) {
                      o.threads = 4;
                      o.connections = 2;
                    },
                    "--connections"},
        OptionsCase{"too_many_connections", [](LoadgenOptions& o) { o.connections = 10001; },
                    "--connections"}),
    [](const auto& p) { return p.param.name; });

TEST(BodySourceTest, GeneratedBodies) {
  LoadgenOptions o;
  o.text = "say \"hi\"\n";
  EXPECT_EQ(BodySource(o, "run").Next(7), R"({"input":"say \"hi\"\n"})");
  o.model = "mini";
  EXPECT_EQ(BodySource(o, "run").Next(7), R"({"model":"mini","input":"say \"hi\"\n"})");
  o.unique = true;
  EXPECT_EQ(BodySource(o, "run").Next(7), R"({"model":"mini","input":"say \"hi\"\n #run-7"})");
}

TEST(BodySourceTest, BodyFilePlaceholders) {
  LoadgenOptions o;
  o.has_body_file = true;
  o.body_file_contents = R"({"input":["a %d","b %d"]})";
  EXPECT_EQ(BodySource(o, "r").Next(3), o.body_file_contents);
  o.unique = true;
  EXPECT_EQ(BodySource(o, "r").Next(3), R"({"input":["a r-3","b r-3"]})");
}

TEST(LoadReportTest, NearestRankPercentiles) {
  std::vector<uint64_t> ns;
  for (uint64_t ms = 1000; ms >= 1; --ms) ns.push_back(ms * 1000000);
  const LatencySummary s = Summarize(ns);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_DOUBLE_EQ(s.p50_ms, 500);
  EXPECT_DOUBLE_EQ(s.p90_ms, 900);
  EXPECT_DOUBLE_EQ(s.p99_ms, 990);
  EXPECT_DOUBLE_EQ(s.p999_ms, 999);
  EXPECT_DOUBLE_EQ(s.max_ms, 1000);
  EXPECT_DOUBLE_EQ(s.mean_ms, 500.5);
  std::vector<uint64_t> none;
  EXPECT_EQ(Summarize(none).count, 0u);
}

TEST(LoadReportTest, JsonAndTable) {
  LoadReport r;
  r.target = "127.0.0.1:8080/v1/embeddings";
  r.mode = "open";
  r.threads = 1;
  r.connections = 2;
  r.duration_s = 2;
  r.offered_rps = 100;
  r.achieved_rps = 99.5;
  r.sent = 200;
  r.responses = 199;
  r.status_counts = {{200, 198}, {503, 1}};
  r.errors = {{"unsent", 1}};
  r.latency = {198, 1.5, 2, 3, 4, 5, 1.75};
  EXPECT_EQ(FormatJson(r),
            R"({"target":"127.0.0.1:8080/v1/embeddings","mode":"open","threads":1,)"
            R"("connections":2,"duration_s":2,"offered_rps":100,"achieved_rps":99.5,"sent":200,)"
            R"("responses":199,"errors_total":2,"status":{"200":198,"503":1},)"
            R"("errors":{"unsent":1},"latency_ms":{"count":198,"p50":1.5,"p90":2,"p99":3,)"
            R"("p99.9":4,"max":5,"mean":1.75}})"
            "\n");
  const std::string table = FormatTable(r);
  EXPECT_NE(table.find("offered       100.0 req/s"), std::string::npos) << table;
  EXPECT_NE(table.find("achieved      99.5 req/s"), std::string::npos) << table;
  EXPECT_NE(table.find("200: 198  503: 1  unsent: 1"), std::string::npos) << table;
  EXPECT_NE(table.find("1.500"), std::string::npos) << table;
}

}  // namespace
}  // namespace sluice::loadgen
