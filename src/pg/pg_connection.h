// PgConnection: one libpq connection (RAII, movable, not copyable) with prepared statements,
// binary parameters, pipelined batches and a client-side deadline on every call, so that a
// hung server costs a bounded wait. A call that finds the connection broken reconnects first.
// Thread-safety: not thread-safe; one thread uses a connection at a time (PgPool hands them out).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "pg/pg_params.h"
#include "pg/pg_result.h"

namespace sluice {

struct PgConnectionOptions {
  // libpq connection string: "postgresql://user@host:5432/db" or "host=... dbname=...".
  std::string dsn;
  // libpq enforces at least 2 s.
  std::chrono::seconds connect_timeout{5};
  // Server-side limit for each statement (0: none); set through the startup options, so it
  // costs no round trip. A DSN that sets its own `options` replaces it.
  std::chrono::milliseconds statement_timeout{30000};
  // Client-side wait for any one call when the caller gives none (0: statement_timeout + 2 s,
  // or unbounded when statement_timeout is 0).
  std::chrono::milliseconds call_timeout{0};
  std::string application_name = "sluice";
};

// A statement prepared once per connection under `name` (a string literal).
struct PgStatement {
  const char* name;
  const char* sql;
};

enum class PgFormat { kText = 0, kBinary = 1 };

// One statement of a pipelined batch.
struct PgCommand {
  const PgStatement* statement;
  PgParams params;
  PgFormat format = PgFormat::kText;
};

struct PgNotification {
  std::string channel;
  std::string payload;
};

class PgConnection {
 public:
  // Connects. InvalidArgument for a malformed DSN; Unavailable when the server cannot be
  // reached or refuses (the message is libpq's, on one line).
  static StatusOr<PgConnection> Connect(const PgConnectionOptions& options);
  // Checks the syntax of a DSN without connecting.
  static Status ValidateDsn(std::string_view dsn);

  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // Runs one parameterized statement (unnamed: parsed each time). `timeout` 0 means the default.
  StatusOr<PgResult> Execute(std::string_view sql, const PgParams& params = PgParams(),
                             PgFormat format = PgFormat::kText,
                             std::chrono::milliseconds timeout = {});
  // Runs a statement prepared on first use on this connection (with the parameter types of that
  // first call) and re-prepared after a reconnect.
  StatusOr<PgResult> ExecutePrepared(const PgStatement& statement, const PgParams& params,
                                     PgFormat format = PgFormat::kText,
                                     std::chrono::milliseconds timeout = {});
  // Runs SQL text that may hold several statements (simple protocol; migrations).
  Status ExecuteScript(std::string_view sql, std::chrono::milliseconds timeout = {});
  // Sends all `commands` in one pipeline (one round trip) and returns their results in order.
  // They form one implicit transaction: the first failure aborts all and is returned.
  StatusOr<std::vector<PgResult>> ExecutePipeline(std::span<const PgCommand> commands,
                                                  std::chrono::milliseconds timeout = {});

  // Reads whatever the server sent without blocking and reports whether the connection is
  // still usable: catches a server that closed it (restart, idle kill) before a query is sent.
  bool CheckAlive();
  // True once a call failed because the connection was lost (or timed out).
  bool broken() const { return conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD; }
  // Closes and opens the connection again; prepared statements are prepared again on use.
  Status Reconnect();

  // Waits up to `timeout` for a NOTIFY on a channel this connection LISTENs to; nullopt on
  // timeout; Unavailable when the connection is lost.
  StatusOr<std::optional<PgNotification>> WaitForNotification(std::chrono::milliseconds timeout);

  // `name` quoted as an SQL identifier (PQescapeIdentifier), for table and column names that
  // come from the user. InvalidArgument when libpq refuses it (e.g. invalid encoding).
  StatusOr<std::string> QuoteIdentifier(std::string_view name);

  // Server version as an integer (150004 for 15.4).
  int server_version() const { return PQserverVersion(conn_); }

 private:
  PgConnection(PGconn* conn, PgConnectionOptions options)
      : conn_(conn), options_(std::move(options)) {}

  static StatusOr<PGconn*> Open(const PgConnectionOptions& options);
  Status EnsureConnected();
  Status EnsurePrepared(const PgStatement& statement, const PgParams& params,
                        std::chrono::steady_clock::time_point deadline);
  std::chrono::steady_clock::time_point Deadline(std::chrono::milliseconds timeout) const;
  // Waits until a result is ready (or the deadline passes: then the connection is closed,
  // since the statement cannot be abandoned otherwise).
  Status AwaitReadable(std::chrono::steady_clock::time_point deadline);
  // Collects the results of one sent command; returns the last one or the first error.
  StatusOr<PgResult> Collect(std::chrono::steady_clock::time_point deadline);
  Status SendFailed();
  void Close();

  PGconn* conn_ = nullptr;
  PgConnectionOptions options_;
  std::unordered_set<std::string> prepared_;
};

}  // namespace sluice
