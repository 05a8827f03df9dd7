#include "pg/pg_pool.h"

#include <algorithm>
#include <utility>

#include "fmt/format.h"

namespace sluice {

PgPool::Handle::Handle(Handle&& other) noexcept
    : pool_(other.pool_), conn_(std::exchange(other.conn_, std::nullopt)) {}

PgPool::Handle& PgPool::Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    Return();
    pool_ = other.pool_;
    conn_ = std::exchange(other.conn_, std::nullopt);
  }
  return *this;
}

PgPool::Handle::~Handle() { Return(); }

void PgPool::Handle::Return() {
  if (conn_.has_value()) {
    pool_->Release(std::move(*conn_));
    conn_.reset();
  }
}

StatusOr<std::unique_ptr<PgPool>> PgPool::Create(PgPoolOptions options) {
  SLUICE_RETURN_IF_ERROR(PgConnection::ValidateDsn(options.connection.dsn));
  if (options.max_size < 1) return InvalidArgument("PostgreSQL pool size must be at least 1");
  return std::unique_ptr<PgPool>(new PgPool(std::move(options)));
}

PgPool::~PgPool() {
  std::lock_guard lock(mu_);
  SLUICE_CHECK(static_cast<int>(idle_.size()) == open_) << "PgPool destroyed while lent";
}

void PgPool::Release(PgConnection conn) {
  {
    std::lock_guard lock(mu_);
    if (conn.broken()) {
      --open_;
      ++dropped_;
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  available_.notify_one();
}

StatusOr<PgPool::Handle> PgPool::Acquire(std::chrono::milliseconds timeout, bool may_connect) {
  if (timeout.count() <= 0) timeout = options_.acquire_timeout;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  while (true) {
    while (!idle_.empty()) {
      PgConnection conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn.CheckAlive()) return Handle(this, std::move(conn));
      --open_;
      ++dropped_;
    }
    if (may_connect && open_ < options_.max_size) {
      ++open_;
      lock.unlock();
      StatusOr<PgConnection> conn = PgConnection::Connect(options_.connection);
      if (!conn.ok()) {
        lock.lock();
        --open_;
        available_.notify_one();
        return conn.status();
      }
      return Handle(this, std::move(conn).value());
    }
    if (!may_connect && open_ == 0) {
      return Unavailable("no open PostgreSQL connection (reconnecting in the background)");
    }
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        !(may_connect && open_ < options_.max_size)) {
      return Unavailable(fmt::format("no PostgreSQL connection free within {} ms (pool of {})",
                                     timeout.count(), options_.max_size));
    }
  }
}

Status PgPool::Warm(int count) {
  count = std::min(count, options_.max_size);
  std::unique_lock lock(mu_);
  while (open_ < count) {
    ++open_;
    lock.unlock();
    StatusOr<PgConnection> conn = PgConnection::Connect(options_.connection);
    lock.lock();
    if (!conn.ok()) {
      --open_;
      return conn.status();
    }
    idle_.push_back(std::move(conn).value());
    available_.notify_one();
  }
  return Status::Ok();
}

int PgPool::open_count() const {
  std::lock_guard lock(mu_);
  return open_;
}

int PgPool::idle_count() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(idle_.size());
}

int64_t PgPool::dropped_count() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace sluice
