#include "pg/pg_listener.h"

#include <algorithm>
#include <thread>

#include "common/logging.h"
#include "fmt/format.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kMinBackoff{250};
constexpr milliseconds kMaxBackoff{10000};

bool IsPlainIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z'))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

}  // namespace

StatusOr<std::unique_ptr<PgListener>> PgListener::Create(PgConnectionOptions options,
                                                         std::string channel) {
  SLUICE_RETURN_IF_ERROR(PgConnection::ValidateDsn(options.dsn));
  if (!IsPlainIdentifier(channel)) {
    return InvalidArgument(fmt::format("bad notification channel name '{}'", channel));
  }
  // A listener waits on its socket, not on statements: no statement timeout needed.
  auto listener =
      std::unique_ptr<PgListener>(new PgListener(std::move(options), std::move(channel)));
  Status s = listener->Connect();
  if (!s.ok())
    SLUICE_LOG_WARN("LISTEN {}: {}; polling until it is back", listener->channel_, s.message());
  return listener;
}

Status PgListener::Connect() {
  conn_.reset();
  StatusOr<PgConnection> conn = PgConnection::Connect(options_);
  Status status = conn.status();
  if (conn.ok()) {
    status = conn->Execute("LISTEN " + channel_).status();
    if (status.ok()) conn_.emplace(std::move(conn).value());
  }
  if (status.ok()) {
    backoff_ = milliseconds(0);
    return status;
  }
  backoff_ = std::clamp(backoff_ * 2, kMinBackoff, kMaxBackoff);
  next_attempt_ = Clock::now() + backoff_;
  return status;
}

bool PgListener::WaitForNotification(milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  if (!connected()) {
    if (Clock::now() >= next_attempt_) {
      if (Connect().ok()) {
        ++reconnects_;
        SLUICE_LOG_INFO("LISTEN {}: connection re-established", channel_);
        return true;
      }
    }
    std::this_thread::sleep_until(std::min(deadline, std::max(next_attempt_, Clock::now())));
    return false;
  }
  StatusOr<std::optional<PgNotification>> got = conn_->WaitForNotification(timeout);
  if (!got.ok()) {
    SLUICE_LOG_WARN("LISTEN {}: {}; polling until it is back", channel_, got.status().message());
    conn_.reset();
    next_attempt_ = Clock::now();
    return false;
  }
  if (!got->has_value()) return false;
  last_payload_ = (*got)->payload;
  return true;
}

}  // namespace sluice
