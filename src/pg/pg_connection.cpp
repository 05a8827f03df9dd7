#include "pg/pg_connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "common/logging.h"
#include "fmt/format.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline` for poll(): -1 waits forever.
int PollTimeout(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > INT_MAX ? INT_MAX : static_cast<int>(left);
}

// Server NOTICEs ("relation already exists, skipping") are chatter, and a FATAL that arrives
// while idle is acted on when the connection is next used.
void LogNotice(void* /*arg*/, const char* message) {
  SLUICE_LOG_DEBUG("PostgreSQL: {}", OneLine(message));
}

}  // namespace

Status PgConnection::ValidateDsn(std::string_view dsn) {
  char* error = nullptr;
  std::string text(dsn);
  PQconninfoOption* parsed = PQconninfoParse(text.c_str(), &error);
  if (parsed == nullptr) {
    std::string message = error ? OneLine(error) : "out of memory";
    if (error != nullptr) PQfreemem(error);
    return InvalidArgument("invalid database URL: " + message);
  }
  // libpq checks the port only when it connects; a typo there is bad input, not an outage.
  std::string bad_port;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::strcmp(o->keyword, "port") != 0) continue;
    std::string_view ports(o->val);
    while (!ports.empty()) {
      std::string_view port = ports.substr(0, ports.find(','));
      ports.remove_prefix(std::min(ports.size(), port.size() + 1));
      bool digits = !port.empty() && port.size() <= 5 &&
                    port.find_first_not_of("0123456789") == std::string_view::npos;
      if (!port.empty() && (!digits || std::stoi(std::string(port)) > 65535)) {
        bad_port = std::string(port);
      }
    }
  }
  PQconninfoFree(parsed);
  if (!bad_port.empty())
    return InvalidArgument("invalid database URL: bad port \"" + bad_port + "\"");
  return Status::Ok();
}

StatusOr<PGconn*> PgConnection::Open(const PgConnectionOptions& options) {
  SLUICE_RETURN_IF_ERROR(ValidateDsn(options.dsn));
  std::string connect_timeout = std::to_string(options.connect_timeout.count());
  std::string startup_options;
  if (options.statement_timeout.count() > 0) {
    startup_options = fmt::format("-c statement_timeout={}", options.statement_timeout.count());
  }
  // Our defaults come first: the DSN, expanded last, overrides any of them it sets itself.
  std::vector<const char*> keys = {"connect_timeout", "application_name", "client_encoding"};
  std::vector<const char*> values = {connect_timeout.c_str(), options.application_name.c_str(),
                                     "UTF8"};
  if (!startup_options.empty()) {
    keys.push_back("options");
    values.push_back(startup_options.c_str());
  }
  keys.push_back("dbname");
  values.push_back(options.dsn.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return Unavailable("could not connect to PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    return Unavailable("could not connect to PostgreSQL: " + message);
  }
  PQsetNoticeProcessor(conn, LogNotice, nullptr);
  return conn;
}

StatusOr<PgConnection> PgConnection::Connect(const PgConnectionOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(PGconn * conn, Open(options));
  return PgConnection(conn, options);
}

PgConnection::PgConnection(PgConnection&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)),
      options_(std::move(other.options_)),
      prepared_(std::move(other.prepared_)) {}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    Close();
    conn_ = std::exchange(other.conn_, nullptr);
    options_ = std::move(other.options_);
    prepared_ = std::move(other.prepared_);
  }
  return *this;
}

PgConnection::~PgConnection() { Close(); }

void PgConnection::Close() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
}

StatusOr<std::string> PgConnection::QuoteIdentifier(std::string_view name) {
  SLUICE_RETURN_IF_ERROR(EnsureConnected());
  char* quoted = PQescapeIdentifier(conn_, name.data(), name.size());
  if (quoted == nullptr) {
    return InvalidArgument("cannot quote identifier: " + OneLine(PQerrorMessage(conn_)));
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

Status PgConnection::Reconnect() {
  Close();
  SLUICE_ASSIGN_OR_RETURN(conn_, Open(options_));
  return Status::Ok();
}

Status PgConnection::EnsureConnected() {
  if (!broken()) return Status::Ok();
  return Reconnect();
}

bool PgConnection::CheckAlive() {
  if (broken()) return false;
  // libpq keeps its socket non-blocking, so this only reads what has already arrived. A server
  // that went away sent a FATAL message and then EOF; libpq sees the EOF only on a read after
  // the one that returned the message, hence the loop while the socket stays readable.
  for (int i = 0; i < 4; ++i) {
    if (PQconsumeInput(conn_) == 0) return false;
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    if (poll(&fd, 1, 0) <= 0) break;
  }
  return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

Clock::time_point PgConnection::Deadline(std::chrono::milliseconds timeout) const {
  std::chrono::milliseconds wait = timeout;
  if (wait.count() <= 0) wait = options_.call_timeout;
  if (wait.count() <= 0 && options_.statement_timeout.count() > 0) {
    wait = options_.statement_timeout + std::chrono::seconds(2);
  }
  if (wait.count() <= 0) return Clock::time_point::max();
  return Clock::now() + wait;
}

Status PgConnection::AwaitReadable(Clock::time_point deadline) {
  while (PQisBusy(conn_) != 0) {
    int wait_ms = PollTimeout(deadline);
    if (wait_ms == 0) {
      // The statement cannot be abandoned on a live connection; closing it makes the server
      // cancel it when it notices.
      Close();
      return Unavailable("PostgreSQL did not answer in time; connection closed");
    }
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    int ready = poll(&fd, 1, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      Close();
      return Unavailable(fmt::format("poll on the PostgreSQL socket: {}", std::strerror(errno)));
    }
    if (ready == 0) continue;
    if (PQconsumeInput(conn_) == 0) return PgErrorStatus(nullptr, conn_);
  }
  return Status::Ok();
}

StatusOr<PgResult> PgConnection::Collect(Clock::time_point deadline) {
  PgResult last;
  std::optional<Status> error;
  while (true) {
    SLUICE_RETURN_IF_ERROR(AwaitReadable(deadline));
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) break;
    PgResult result(raw);
    switch (PQresultStatus(raw)) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
      case PGRES_EMPTY_QUERY:
        if (!error) last = std::move(result);
        break;
      default:
        if (!error) error = PgErrorStatus(raw, conn_);
        break;
    }
  }
  if (error) return *error;
  return last;
}

Status PgConnection::SendFailed() { return PgErrorStatus(nullptr, conn_); }

StatusOr<PgResult> PgConnection::Execute(std::string_view sql, const PgParams& params,
                                         PgFormat format, std::chrono::milliseconds timeout) {
  SLUICE_RETURN_IF_ERROR(EnsureConnected());
  Clock::time_point deadline = Deadline(timeout);
  std::string text(sql);
  std::vector<const char*> values = params.values();
  if (PQsendQueryParams(conn_, text.c_str(), params.size(), params.types(), values.data(),
                        params.lengths(), params.formats(), static_cast<int>(format)) == 0) {
    return SendFailed();
  }
  return Collect(deadline);
}

Status PgConnection::EnsurePrepared(const PgStatement& statement, const PgParams& params,
                                    Clock::time_point deadline) {
  if (prepared_.contains(statement.name)) return Status::Ok();
  if (PQsendPrepare(conn_, statement.name, statement.sql, params.size(), params.types()) == 0) {
    return SendFailed();
  }
  SLUICE_ASSIGN_OR_RETURN(PgResult ignored, Collect(deadline));
  prepared_.insert(statement.name);
  return Status::Ok();
}

StatusOr<PgResult> PgConnection::ExecutePrepared(const PgStatement& statement,
                                                 const PgParams& params, PgFormat format,
                                                 std::chrono::milliseconds timeout) {
  SLUICE_RETURN_IF_ERROR(EnsureConnected());
  Clock::time_point deadline = Deadline(timeout);
  SLUICE_RETURN_IF_ERROR(EnsurePrepared(statement, params, deadline));
  std::vector<const char*> values = params.values();
  if (PQsendQueryPrepared(conn_, statement.name, params.size(), values.data(), params.lengths(),
                          params.formats(), static_cast<int>(format)) == 0) {
    return SendFailed();
  }
  return Collect(deadline);
}

Status PgConnection::ExecuteScript(std::string_view sql, std::chrono::milliseconds timeout) {
  SLUICE_RETURN_IF_ERROR(EnsureConnected());
  Clock::time_point deadline = Deadline(timeout);
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) return SendFailed();
  SLUICE_ASSIGN_OR_RETURN(PgResult ignored, Collect(deadline));
  return Status::Ok();
}

StatusOr<std::vector<PgResult>> PgConnection::ExecutePipeline(std::span<const PgCommand> commands,
                                                              std::chrono::milliseconds timeout) {
  SLUICE_RETURN_IF_ERROR(EnsureConnected());
  Clock::time_point deadline = Deadline(timeout);
  for (const PgCommand& command : commands) {
    SLUICE_RETURN_IF_ERROR(EnsurePrepared(*command.statement, command.params, deadline));
  }
  if (PQenterPipelineMode(conn_) == 0) return PgErrorStatus(nullptr, conn_);
  for (const PgCommand& command : commands) {
    std::vector<const char*> values = command.params.values();
    if (PQsendQueryPrepared(conn_, command.statement->name, command.params.size(), values.data(),
                            command.params.lengths(), command.params.formats(),
                            static_cast<int>(command.format)) == 0) {
      Status status = SendFailed();
      Close();  // a half-sent pipeline cannot be resumed
      return status;
    }
  }
  if (PQpipelineSync(conn_) == 0) {
    Status status = SendFailed();
    Close();
    return status;
  }
  std::vector<PgResult> results;
  std::optional<Status> error;
  for (size_t i = 0; i < commands.size(); ++i) {
    PgResult first;
    bool have_first = false;
    while (true) {
      SLUICE_RETURN_IF_ERROR(AwaitReadable(deadline));
      PGresult* raw = PQgetResult(conn_);
      if (raw == nullptr) break;
      PgResult result(raw);
      ExecStatusType status = PQresultStatus(raw);
      if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        if (!have_first) first = std::move(result);
        have_first = true;
      } else if (status == PGRES_PIPELINE_ABORTED) {
        if (!error) error = Internal("PostgreSQL pipeline aborted");
      } else if (!error) {
        error = PgErrorStatus(raw, conn_);
      }
    }
    results.push_back(std::move(first));
  }
  // The pipeline ends with the result of its sync point.
  SLUICE_RETURN_IF_ERROR(AwaitReadable(deadline));
  PgResult sync(PQgetResult(conn_));
  if (PQexitPipelineMode(conn_) == 0) {
    Close();
    return Internal("PostgreSQL: could not leave pipeline mode");
  }
  if (error) return *error;
  return results;
}

StatusOr<std::optional<PgNotification>> PgConnection::WaitForNotification(
    std::chrono::milliseconds timeout) {
  if (broken()) return Unavailable("PostgreSQL connection lost");
  Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    if (PQconsumeInput(conn_) == 0) return PgErrorStatus(nullptr, conn_);
    if (PGnotify* notify = PQnotifies(conn_)) {
      PgNotification out{notify->relname, notify->extra ? notify->extra : ""};
      PQfreemem(notify);
      return std::optional<PgNotification>(std::move(out));
    }
    int wait_ms = PollTimeout(deadline);
    if (wait_ms == 0) return std::optional<PgNotification>();
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    if (poll(&fd, 1, wait_ms) < 0 && errno != EINTR) {
      return Unavailable(fmt::format("poll on the PostgreSQL socket: {}", std::strerror(errno)));
    }
  }
}

}  // namespace sluice
