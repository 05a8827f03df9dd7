#include "pg/pg_connection.h"

#include <gtest/gtest.h>

#include <thread>

#include "pg_test_env.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;
using testing::PgTest;

TEST(PgConnectionDsnTest, MalformedDsnIsInvalidArgument) {
  for (const char* dsn :
       {"postgresql://host:notaport/db", "host=a port", "postgresql://h/db?x=1"}) {
    PgConnectionOptions options;
    options.dsn = dsn;
    StatusOr<PgConnection> conn = PgConnection::Connect(options);
    ASSERT_FALSE(conn.ok()) << dsn;
    EXPECT_EQ(conn.status().code(), StatusCode::kInvalidArgument) << conn.status().ToString();
    EXPECT_NE(conn.status().message().find("invalid database URL"), std::string::npos);
    EXPECT_EQ(conn.status().message().find('\n'), std::string::npos);
  }
}

TEST(PgConnectionDsnTest, UnreachableServerIsUnavailableOnOneLine) {
  PgConnectionOptions options;
  options.dsn = "postgresql://nobody@127.0.0.1:1/none";  // nothing listens on port 1
  StatusOr<PgConnection> conn = PgConnection::Connect(options);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(conn.status().message().find("could not connect to PostgreSQL"), std::string::npos)
      << conn.status().message();
  EXPECT_NE(conn.status().message().find("Connection refused"), std::string::npos);
  EXPECT_EQ(conn.status().message().find('\n'), std::string::npos);
}

class PgConnectionTest : public PgTest {};

TEST_F(PgConnectionTest, BinaryParametersRoundTrip) {
  PgConnection conn = Connect();
  const std::string bytes("\0\x01\xff\x00z", 5);
  std::vector<std::string> texts = {"plain", "with,comma", "quote\"s {braces}", "日本語", ""};
  std::vector<int64_t> ints = {-1, 0, int64_t{1} << 40};
  std::vector<std::string_view> blobs = {bytes, "", "abc"};
  StatusOr<PgResult> r = conn.Execute(
      "SELECT $1::bytea, $2::text[], $3::int8[], $4::int8, $5::int4, $6::bytea[], "
      "array_length($2::text[], 1), octet_length($1::bytea)",
      PgParams().Bytea(bytes).TextArray(texts).Int64Array(ints).Int64(-42).Int32(7).ByteaArray(
          blobs),
      PgFormat::kBinary);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Raw(0, 0), bytes);
  StatusOr<std::vector<std::string>> back = r->BinaryTextArray(0, 1);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, texts);
  EXPECT_EQ(*r->BinaryInt64(0, 3), -42);
  EXPECT_EQ(*r->BinaryInt32(0, 4), 7);
  EXPECT_EQ(*r->BinaryInt32(0, 6), 5);
  EXPECT_EQ(*r->BinaryInt32(0, 7), 5);
  // An int column read as int8 is a mismatch, reported rather than trusted.
  EXPECT_EQ(r->BinaryInt64(0, 4).status().code(), StatusCode::kDataLoss);
}

TEST_F(PgConnectionTest, EmptyArraysAndNulls) {
  PgConnection conn = Connect();
  StatusOr<PgResult> r = conn.Execute(
      "SELECT $1::text[], $2::text IS NULL, cardinality($3::int8[])",
      PgParams().TextArray(std::vector<std::string>{}).Null().Int64Array(std::vector<int64_t>{}),
      PgFormat::kBinary);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->BinaryTextArray(0, 0)->empty());
  EXPECT_EQ(r->Raw(0, 1), "\x01");
  EXPECT_EQ(*r->BinaryInt32(0, 2), 0);
}

struct ErrorCase {
  const char* sql;
  StatusCode code;
  const char* sqlstate;
};

TEST_F(PgConnectionTest, ErrorsCarryTheSqlState) {
  PgConnection conn = Connect();
  ASSERT_TRUE(
      conn.ExecuteScript("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)").ok());
  const ErrorCase cases[] = {
      {"SELEC 1", StatusCode::kInternal, "42601"},
      {"INSERT INTO t VALUES (1)", StatusCode::kAlreadyExists, "23505"},
      {"SELECT 1/0", StatusCode::kInvalidArgument, "22012"},
      {"SELECT * FROM missing_table", StatusCode::kFailedPrecondition, "42P01"},
  };
  for (const ErrorCase& c : cases) {
    StatusOr<PgResult> r = conn.Execute(c.sql);
    ASSERT_FALSE(r.ok()) << c.sql;
    EXPECT_EQ(r.status().code(), c.code) << c.sql << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find(std::string("SQLSTATE ") + c.sqlstate), std::string::npos)
        << r.status().message();
    EXPECT_FALSE(conn.broken());
  }
}

TEST_F(PgConnectionTest, StatementTimeoutIsDeadlineExceeded) {
  PgConnectionOptions options = Options();
  options.statement_timeout = milliseconds(100);
  StatusOr<PgConnection> conn = PgConnection::Connect(options);
  ASSERT_TRUE(conn.ok());
  StatusOr<PgResult> r = conn->Execute("SELECT pg_sleep(5)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("57014"), std::string::npos);
  EXPECT_TRUE(conn->Execute("SELECT 1").ok());  // the connection survives
}

TEST_F(PgConnectionTest, ClientDeadlineClosesAndNextCallReconnects) {
  PgConnection conn = Connect();
  auto start = std::chrono::steady_clock::now();
  StatusOr<PgResult> r =
      conn.Execute("SELECT pg_sleep(5)", PgParams(), PgFormat::kText, milliseconds(150));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_TRUE(conn.broken());
  StatusOr<PgResult> again = conn.Execute("SELECT 41 + 1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->Raw(0, 0), "42");
}

TEST_F(PgConnectionTest, KilledBackendIsDetectedAndPreparedStatementsComeBack) {
  PgConnection conn = Connect();
  static constexpr PgStatement kAdd = {"test_add", "SELECT $1::int8 + 1"};
  ASSERT_TRUE(conn.ExecutePrepared(kAdd, PgParams().Int64(1)).ok());
  StatusOr<PgResult> pid = conn.Execute("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.ok());
  Query("SELECT pg_terminate_backend(" + std::string(pid->Raw(0, 0)) + ")");
  // The server's goodbye arrives asynchronously.
  for (int i = 0; i < 100 && conn.CheckAlive(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_FALSE(conn.CheckAlive());
  StatusOr<PgResult> r = conn.ExecutePrepared(kAdd, PgParams().Int64(41));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Raw(0, 0), "42");
}

TEST_F(PgConnectionTest, PipelineRunsInOrderAndFailsAsOneTransaction) {
  PgConnection conn = Connect();
  ASSERT_TRUE(conn.ExecuteScript("CREATE TABLE p (v int8 PRIMARY KEY)").ok());
  static constexpr PgStatement kInsert = {"test_insert", "INSERT INTO p VALUES ($1::int8)"};
  static constexpr PgStatement kCount = {"test_count", "SELECT count(*) FROM p"};
  std::vector<PgCommand> ok;
  ok.push_back({&kInsert, PgParams().Int64(1)});
  ok.push_back({&kInsert, PgParams().Int64(2)});
  ok.push_back({&kCount, PgParams()});
  StatusOr<std::vector<PgResult>> results = conn.ExecutePipeline(ok);
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 3u);
  EXPECT_EQ((*results)[0].affected_rows(), 1);
  EXPECT_EQ((*results)[2].Raw(0, 0), "2");

  std::vector<PgCommand> bad;
  bad.push_back({&kInsert, PgParams().Int64(3)});
  bad.push_back({&kInsert, PgParams().Int64(1)});  // duplicate: aborts the whole batch
  bad.push_back({&kInsert, PgParams().Int64(4)});
  StatusOr<std::vector<PgResult>> failed = conn.ExecutePipeline(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kAlreadyExists) << failed.status().ToString();
  EXPECT_EQ(Query("SELECT count(*) FROM p"), "2");
  // The connection is usable afterwards, in and out of pipeline mode.
  EXPECT_TRUE(conn.ExecutePipeline(ok).status().code() == StatusCode::kAlreadyExists);
  EXPECT_TRUE(conn.Execute("SELECT 1").ok());
}

TEST_F(PgConnectionTest, MovedConnectionKeepsWorking) {
  PgConnection a = Connect();
  PgConnection b = std::move(a);
  EXPECT_TRUE(b.Execute("SELECT 1").ok());
  PgConnection c = Connect();
  c = std::move(b);
  EXPECT_TRUE(c.Execute("SELECT 1").ok());
}

}  // namespace
}  // namespace sluice
