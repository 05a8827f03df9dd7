#include "load_runner.h"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "body_source.h"

namespace sluice::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

constexpr auto kReconnectDelay = std::chrono::milliseconds(50);

// What one thread measured; merged after the run.
struct ThreadResult {
  std::vector<uint64_t> latencies_ns;  // 2xx responses in the window
  std::map<int, uint64_t> status_counts;
  std::map<std::string, uint64_t> errors;
  uint64_t sent = 0;
  uint64_t responses = 0;
  uint64_t completed_in_window = 0;  // responses that arrived inside the window (any due time)
};

// Timing shared by all threads of a run.
struct Schedule {
  TimePoint start;         // first request due (warm-up begins)
  TimePoint window_start;  // recording begins
  TimePoint window_end;    // nothing new is due from here
  std::chrono::nanoseconds timeout;
};

class Worker;

// One keep-alive connection. Lives on its worker's thread; handlers capture `this`, which
// outlives them because the worker stops and destroys its io_context first.
class Connection {
 public:
  Connection(Worker& worker, asio::io_context& io) : worker_(worker), stream_(io), retry_(io) {}

  void Connect();
  void Send(TimePoint due);
  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    retry_.cancel();
  }
  bool busy() const { return busy_; }

 private:
  void OnConnect(const beast::error_code& ec);
  void OnWrite(const beast::error_code& ec);
  void OnRead(const beast::error_code& ec);
  void Fail(const char* kind);

  Worker& worker_;
  beast::tcp_stream stream_;
  asio::steady_timer retry_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  TimePoint due_{};
  bool busy_ = false;
};

class Worker {
 public:
  Worker(const LoadgenOptions& options, const Schedule& schedule, const tcp::endpoint& endpoint,
         const BodySource& bodies, int index, int connections)
      : options_(options),
        schedule_(schedule),
        endpoint_(endpoint),
        bodies_(bodies),
        index_(index),
        tick_(io_),
        deadline_(io_) {
    for (int i = 0; i < connections; ++i) {
      connections_.push_back(std::make_unique<Connection>(*this, io_));
    }
    if (options.rate > 0) {
      const double per_thread = options.rate / options.threads;
      interval_ = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / per_thread));
      // Threads interleave their schedules instead of firing together.
      next_due_ = schedule.start + interval_ * index / options.threads;
    }
    result_.latencies_ns.reserve(
        static_cast<size_t>(options.rate > 0 ? options.rate / options.threads * options.duration_s
                                             : 100000) +
        16);
  }

  void Run() {
    for (auto& c : connections_) c->Connect();
    if (options_.rate > 0) ScheduleTick();
    deadline_.expires_at(schedule_.window_end + schedule_.timeout);
    deadline_.async_wait([this](const beast::error_code& ec) {
      if (!ec) Finish();
    });
    io_.run();
  }

  ThreadResult TakeResult() { return std::move(result_); }

  // --- called by connections ---
  const tcp::endpoint& endpoint() const { return endpoint_; }
  const Schedule& schedule() const { return schedule_; }
  bool finished() const { return finished_; }
  std::chrono::nanoseconds timeout() const { return schedule_.timeout; }

  http::request<http::string_body> MakeRequest() {
    http::request<http::string_body> req{http::verb::post, options_.target.path, 11};
    req.set(http::field::host, fmt::format("{}:{}", options_.target.host, options_.target.port));
    req.set(http::field::content_type, options_.content_type);
    req.set(http::field::user_agent, "sluice-loadgen");
    req.keep_alive(true);
    req.body() = bodies_.Next(next_seq_);
    next_seq_ += static_cast<uint64_t>(options_.threads);
    req.prepare_payload();
    return req;
  }

  bool InWindow(TimePoint due) const {
    return due >= schedule_.window_start && due < schedule_.window_end;
  }

  void RecordSent(TimePoint due) {
    if (InWindow(due)) ++result_.sent;
  }

  void RecordResponse(TimePoint due, int status) {
    const TimePoint now = SteadyClock::now();
    if (now >= schedule_.window_start && now < schedule_.window_end) {
      ++result_.completed_in_window;
    }
    if (!InWindow(due)) return;
    ++result_.responses;
    ++result_.status_counts[status];
    if (status >= 200 && status < 300) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - due);
      result_.latencies_ns.push_back(static_cast<uint64_t>(ns.count()));
    }
  }

  void RecordError(TimePoint due, const char* kind) {
    // Connection failures outside a request count whenever the window is open.
    const bool counts = due == TimePoint{} ? SteadyClock::now() < schedule_.window_end &&
                                                 SteadyClock::now() >= schedule_.window_start
                                           : InWindow(due);
    if (counts) ++result_.errors[kind];
  }

  // A connection is ready for its next request.
  void OnIdle(Connection* c) {
    if (finished_) return;
    if (options_.closed_loop) {
      const TimePoint now = SteadyClock::now();
      if (now < schedule_.window_end) {
        c->Send(now);
      } else {
        MaybeFinishEarly();
      }
      return;
    }
    if (!pending_.empty()) {
      const TimePoint due = pending_.front();
      pending_.pop_front();
      c->Send(due);
      return;
    }
    idle_.push_back(c);
    MaybeFinishEarly();
  }

 private:
  void ScheduleTick() {
    tick_.expires_at(next_due_);
    tick_.async_wait([this](const beast::error_code& ec) {
      if (ec || finished_) return;
      const TimePoint now = SteadyClock::now();
      // Catch up on every request due by now, so a late timer does not shift the schedule.
      while (next_due_ <= now && next_due_ < schedule_.window_end) {
        Dispatch(next_due_);
        next_due_ += interval_;
      }
      if (next_due_ < schedule_.window_end) {
        ScheduleTick();
      } else {
        generating_done_ = true;
        MaybeFinishEarly();
      }
    });
  }

  void Dispatch(TimePoint due) {
    if (!idle_.empty()) {
      Connection* c = idle_.back();
      idle_.pop_back();
      c->Send(due);
    } else {
      pending_.push_back(due);
    }
  }

  // Ends the run once nothing more is due and no request is outstanding.
  void MaybeFinishEarly() {
    const bool done_generating =
        options_.closed_loop ? SteadyClock::now() >= schedule_.window_end : generating_done_;
    if (!done_generating || !pending_.empty()) return;
    for (const auto& c : connections_) {
      if (c->busy()) return;
    }
    Finish();
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    for (TimePoint due : pending_) {
      if (InWindow(due)) ++result_.errors["unsent"];
    }
    pending_.clear();
    tick_.cancel();
    deadline_.cancel();
    for (auto& c : connections_) c->Close();
    io_.stop();
  }

  const LoadgenOptions& options_;
  const Schedule& schedule_;
  const tcp::endpoint endpoint_;
  const BodySource& bodies_;
  const int index_;
  asio::io_context io_;  // declared before everything that holds handlers on it
  asio::steady_timer tick_;
  asio::steady_timer deadline_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;  // connected and waiting for work (open loop)
  std::deque<TimePoint> pending_;  // due but no idle connection yet (open loop)
  std::chrono::nanoseconds interval_{0};
  TimePoint next_due_{};
  uint64_t next_seq_ = static_cast<uint64_t>(index_);
  bool generating_done_ = false;
  bool finished_ = false;
  ThreadResult result_;
};

void Connection::Connect() {
  if (worker_.finished()) return;
  busy_ = false;
  stream_.expires_after(worker_.timeout());
  stream_.async_connect(worker_.endpoint(), [this](const beast::error_code& ec) { OnConnect(ec); });
}

void Connection::OnConnect(const beast::error_code& ec) {
  if (worker_.finished()) return;
  if (ec) {
    worker_.RecordError(TimePoint{}, "connect");
    stream_.close();
    retry_.expires_after(kReconnectDelay);
    retry_.async_wait([this](const beast::error_code& wait_ec) {
      if (!wait_ec) Connect();
    });
    return;
  }
  stream_.socket().set_option(tcp::no_delay(true));
  worker_.OnIdle(this);
}

void Connection::Send(TimePoint due) {
  busy_ = true;
  due_ = due;
  request_ = worker_.MakeRequest();
  worker_.RecordSent(due);
  stream_.expires_after(worker_.timeout());
  http::async_write(stream_, request_,
                    [this](const beast::error_code& ec, size_t) { OnWrite(ec); });
}

void Connection::OnWrite(const beast::error_code& ec) {
  if (worker_.finished()) return;
  if (ec) return Fail(ec == beast::error::timeout ? "timeout" : "io");
  response_ = {};
  http::async_read(stream_, buffer_, response_,
                   [this](const beast::error_code& read_ec, size_t) { OnRead(read_ec); });
}

void Connection::OnRead(const beast::error_code& ec) {
  if (worker_.finished()) return;
  if (ec) return Fail(ec == beast::error::timeout ? "timeout" : "io");
  worker_.RecordResponse(due_, static_cast<int>(response_.result_int()));
  busy_ = false;
  if (!response_.keep_alive()) {
    // The server closes after this response (HTTP/1.0 or Connection: close): reconnect.
    stream_.close();
    buffer_.clear();
    Connect();
    return;
  }
  worker_.OnIdle(this);
}

void Connection::Fail(const char* kind) {
  worker_.RecordError(due_, kind);
  busy_ = false;
  stream_.close();
  buffer_.clear();
  Connect();
}

std::string RunId() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

}  // namespace

StatusOr<LoadReport> LoadRunner::Run(const LoadgenOptions& options) {
  SLUICE_RETURN_IF_ERROR(ValidateOptions(options));
  beast::error_code ec;
  const asio::ip::address address = asio::ip::make_address(options.target.host, ec);
  if (ec)
    return Unavailable(fmt::format("cannot use host {}: {}", options.target.host, ec.message()));
  const tcp::endpoint endpoint(address, options.target.port);

  const BodySource bodies(options, RunId());
  Schedule schedule;
  // A short lead lets every thread set up its connections before the first request is due.
  schedule.start = SteadyClock::now() + std::chrono::milliseconds(100);
  const auto to_ns = [](double s) {
    return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9));
  };
  schedule.window_start = schedule.start + to_ns(options.warmup_s);
  schedule.window_end = schedule.window_start + to_ns(options.duration_s);
  schedule.timeout = to_ns(options.timeout_s);

  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < options.threads; ++t) {
    // Spread connections as evenly as possible.
    const int n =
        options.connections / options.threads + (t < options.connections % options.threads);
    workers.push_back(std::make_unique<Worker>(options, schedule, endpoint, bodies, t, n));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  for (std::thread& t : threads) t.join();

  LoadReport report;
  report.target =
      fmt::format("{}:{}{}", options.target.host, options.target.port, options.target.path);
  report.mode = options.closed_loop ? "closed" : "open";
  report.threads = options.threads;
  report.connections = options.connections;
  report.duration_s = options.duration_s;
  report.offered_rps = options.rate;
  std::vector<uint64_t> latencies;
  uint64_t completed_in_window = 0;
  for (auto& w : workers) {
    ThreadResult r = w->TakeResult();
    latencies.insert(latencies.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    for (const auto& [status, count] : r.status_counts) report.status_counts[status] += count;
    for (const auto& [kind, count] : r.errors) report.errors[kind] += count;
    report.sent += r.sent;
    report.responses += r.responses;
    completed_in_window += r.completed_in_window;
  }
  report.achieved_rps = static_cast<double>(completed_in_window) / options.duration_s;
  report.latency = Summarize(latencies);
  return report;
}

}  // namespace sluice::loadgen
