#include "pg/pg_result.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "fmt/format.h"

namespace sluice {
namespace {

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
constexpr int64_t kPgEpochOffsetUs = 946684800LL * 1000000;

uint32_t Be32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return ntohl(v);
}

uint64_t Be64(const char* p) { return (static_cast<uint64_t>(Be32(p)) << 32) | Be32(p + 4); }

StatusCode CodeForSqlState(std::string_view state) {
  if (state.size() != 5) return StatusCode::kInternal;
  std::string_view cls = state.substr(0, 2);
  if (state == "57014") return StatusCode::kDeadlineExceeded;  // query_canceled (timeout)
  if (cls == "08" || cls == "53" || cls == "57") return StatusCode::kUnavailable;
  if (state == "40001" || state == "40P01") return StatusCode::kUnavailable;  // retry later
  if (state == "55P03") return StatusCode::kUnavailable;                      // lock_not_available
  if (state == "23505") return StatusCode::kAlreadyExists;
  if (cls == "22" || cls == "23") return StatusCode::kInvalidArgument;
  if (state == "42P01" || state == "3F000") return StatusCode::kFailedPrecondition;  // no table
  if (cls == "28") return StatusCode::kFailedPrecondition;  // authentication
  return StatusCode::kInternal;
}

}  // namespace

PgResult::~PgResult() {
  if (result_ != nullptr) PQclear(result_);
}

PgResult::PgResult(PgResult&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

PgResult& PgResult::operator=(PgResult&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

int PgResult::rows() const { return result_ == nullptr ? 0 : PQntuples(result_); }

int PgResult::columns() const { return result_ == nullptr ? 0 : PQnfields(result_); }

int64_t PgResult::affected_rows() const {
  if (result_ == nullptr) return 0;
  const char* n = PQcmdTuples(result_);
  return (n == nullptr || *n == '\0') ? 0 : std::strtoll(n, nullptr, 10);
}

bool PgResult::IsNull(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }

std::string_view PgResult::Raw(int row, int column) const {
  return {PQgetvalue(result_, row, column), static_cast<size_t>(PQgetlength(result_, row, column))};
}

StatusOr<int32_t> PgResult::BinaryInt32(int row, int column) const {
  std::string_view raw = Raw(row, column);
  if (raw.size() != 4) return DataLoss(fmt::format("column {}: expected int4", column));
  return static_cast<int32_t>(Be32(raw.data()));
}

StatusOr<int64_t> PgResult::BinaryInt64(int row, int column) const {
  std::string_view raw = Raw(row, column);
  if (raw.size() != 8) return DataLoss(fmt::format("column {}: expected int8", column));
  return static_cast<int64_t>(Be64(raw.data()));
}

StatusOr<std::chrono::system_clock::time_point> PgResult::BinaryTimestamp(int row,
                                                                          int column) const {
  SLUICE_ASSIGN_OR_RETURN(int64_t pg_us, BinaryInt64(row, column));
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(pg_us + kPgEpochOffsetUs)));
}

StatusOr<std::vector<std::string>> PgResult::BinaryTextArray(int row, int column) const {
  std::string_view raw = Raw(row, column);
  auto truncated = [column] { return DataLoss(fmt::format("column {}: bad array", column)); };
  if (raw.size() < 12) return truncated();
  uint32_t ndim = Be32(raw.data());
  size_t pos = 12;
  std::vector<std::string> out;
  if (ndim == 0) return out;
  if (ndim != 1 || raw.size() < pos + 8) return truncated();
  uint32_t count = Be32(raw.data() + pos);
  pos += 8;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (raw.size() < pos + 4) return truncated();
    int32_t len = static_cast<int32_t>(Be32(raw.data() + pos));
    pos += 4;
    if (len < 0) return DataLoss(fmt::format("column {}: null array element", column));
    if (raw.size() < pos + static_cast<size_t>(len)) return truncated();
    out.emplace_back(raw.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len);
  }
  return out;
}

std::string OneLine(std::string_view message) {
  std::string out;
  bool pending_space = false;
  for (char c : message) {
    if (c == '\n' || c == '\r' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      // Two libpq lines read best as separate clauses.
      if (out.back() != ':' && out.back() != '.' && out.back() != ';') out += ';';
      out += ' ';
      pending_space = false;
    }
    out += c;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ';')) out.pop_back();
  return out;
}

Status PgErrorStatus(const PGresult* result, const PGconn* conn) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message;
  if (result != nullptr) {
    const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    message = primary ? primary : PQresultErrorMessage(result);
    const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
    if (detail != nullptr) message += fmt::format(" ({})", detail);
  }
  if (message.empty() && conn != nullptr) message = PQerrorMessage(conn);
  message = OneLine(message);
  if (message.empty()) message = "unknown PostgreSQL error";
  // With no SQLSTATE the failure was on the client side of the socket: the connection is gone.
  bool connection_lost = conn != nullptr && PQstatus(conn) == CONNECTION_BAD;
  if (state == nullptr) {
    return {connection_lost ? StatusCode::kUnavailable : StatusCode::kInternal,
            "PostgreSQL: " + message};
  }
  StatusCode code = connection_lost ? StatusCode::kUnavailable : CodeForSqlState(state);
  return {code, fmt::format("PostgreSQL: {} (SQLSTATE {})", message, state)};
}

}  // namespace sluice
