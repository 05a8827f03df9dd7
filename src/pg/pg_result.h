// PgResult: owns one PGresult and reads its fields. Readers named Binary* require the statement
// to have asked for binary results; their values come from our own SQL, so a length that does
// not match the type is reported as DataLoss rather than trusted. Not thread-safe.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* result) : result_(result) {}
  ~PgResult();
  PgResult(PgResult&& other) noexcept;
  PgResult& operator=(PgResult&& other) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  int rows() const;
  int columns() const;
  // Rows touched by an INSERT/UPDATE/DELETE (PQcmdTuples), 0 for other statements.
  int64_t affected_rows() const;

  bool IsNull(int row, int column) const;
  // The raw bytes of a field: its text form, or its binary form in a binary result.
  std::string_view Raw(int row, int column) const;

  StatusOr<int32_t> BinaryInt32(int row, int column) const;
  StatusOr<int64_t> BinaryInt64(int row, int column) const;
  StatusOr<std::chrono::system_clock::time_point> BinaryTimestamp(int row, int column) const;
  StatusOr<std::vector<std::string>> BinaryTextArray(int row, int column) const;

 private:
  PGresult* result_ = nullptr;
};

// The error of a failed result (or of the connection when `result` is null), as a Status whose
// message ends with "(SQLSTATE xxxxx)". Connection failures and shutdowns map to Unavailable,
// statement timeouts to DeadlineExceeded, constraint and data errors to InvalidArgument.
Status PgErrorStatus(const PGresult* result, const PGconn* conn);

// libpq's multi-line error text folded into one line.
std::string OneLine(std::string_view message);

}  // namespace sluice
