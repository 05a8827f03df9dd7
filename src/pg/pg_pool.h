// PgPool: a bounded pool of PgConnections. Acquire hands out a live idle connection (checked
// without a round trip), opens a new one while under max_size, or waits up to a timeout and
// then returns Unavailable. A connection that broke while lent is dropped on return and
// replaced on demand, which is how the pool recovers from a PostgreSQL restart.
// Thread-safety: all methods are safe to call from any thread; a Handle belongs to one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/status.h"
#include "pg/pg_connection.h"

namespace sluice {

struct PgPoolOptions {
  PgConnectionOptions connection;
  int max_size = 8;
  // How long Acquire waits for a free connection when the caller gives no timeout.
  std::chrono::milliseconds acquire_timeout{5000};
};

class PgPool {
 public:
  // A lent connection, returned to the pool when destroyed.
  class Handle {
   public:
    Handle(Handle&& other) noexcept;
    Handle& operator=(Handle&& other) noexcept;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle();

    PgConnection& operator*() { return *conn_; }
    PgConnection* operator->() { return &*conn_; }

   private:
    friend class PgPool;
    Handle(PgPool* pool, PgConnection conn) : pool_(pool), conn_(std::move(conn)) {}
    void Return();

    PgPool* pool_;
    std::optional<PgConnection> conn_;
  };

  // Checks the DSN's syntax (InvalidArgument); connects only on demand.
  static StatusOr<std::unique_ptr<PgPool>> Create(PgPoolOptions options);
  // REQUIRES: every Handle has been destroyed.
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // `timeout` 0 means options().acquire_timeout. With `may_connect` false the pool never opens
  // a connection for this call (which could take connect_timeout when the host is down): a
  // latency-bound caller gets an idle one or Unavailable.
  StatusOr<Handle> Acquire(std::chrono::milliseconds timeout = {}, bool may_connect = true);
  // Opens connections until `count` (at most max_size) are open; the first failure is returned.
  Status Warm(int count);

  int open_count() const;
  int idle_count() const;
  // Connections found dead at Acquire or on return since the pool was created.
  int64_t dropped_count() const;
  const PgPoolOptions& options() const { return options_; }

 private:
  explicit PgPool(PgPoolOptions options) : options_(std::move(options)) {}
  void Release(PgConnection conn);

  const PgPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable available_;
  std::vector<PgConnection> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;                    // GUARDED_BY(mu_): idle + lent + being opened
  int64_t dropped_ = 0;             // GUARDED_BY(mu_)
};

}  // namespace sluice
