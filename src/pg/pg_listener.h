// PgListener: a dedicated connection that LISTENs on one channel, for idle workers to sleep on
// until a job arrives ("sluice_jobs") or finishes ("sluice_job_finished"). When PostgreSQL is
// unreachable it keeps trying to reconnect (with backoff) and meanwhile just sleeps out the
// timeout, so a caller that claims after every wake-up falls back to polling by itself.
// Thread-safety: not thread-safe; one thread waits on a listener.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "pg/pg_connection.h"

namespace sluice {

class PgListener {
 public:
  // InvalidArgument for a bad DSN or a channel that is not a plain lower-case identifier.
  // An unreachable server is not an error: the listener starts disconnected and polls.
  static StatusOr<std::unique_ptr<PgListener>> Create(PgConnectionOptions options,
                                                      std::string channel);

  // Returns true when a notification arrived (the payload of the first one is kept in
  // last_payload()) or the connection was just re-established (notifications may have been
  // missed); false when `timeout` passed without one.
  bool WaitForNotification(std::chrono::milliseconds timeout);

  bool connected() const { return conn_.has_value() && !conn_->broken(); }
  const std::string& last_payload() const { return last_payload_; }
  int64_t reconnects() const { return reconnects_; }

 private:
  PgListener(PgConnectionOptions options, std::string channel)
      : options_(std::move(options)), channel_(std::move(channel)) {}
  // Connects and LISTENs; on failure schedules the next try.
  Status Connect();

  const PgConnectionOptions options_;
  const std::string channel_;
  std::optional<PgConnection> conn_;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{0};
  std::string last_payload_;
  int64_t reconnects_ = 0;
};

}  // namespace sluice
