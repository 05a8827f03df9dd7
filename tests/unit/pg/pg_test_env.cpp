#include "pg_test_env.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>

#include "fmt/format.h"
#include "pg/pg_migrations.h"

namespace sluice::testing {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string Quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

PgConnectionOptions AdminOptions(const std::string& dsn) {
  PgConnectionOptions options;
  options.dsn = dsn;
  return options;
}

}  // namespace

std::string AdminDsn() {
  std::string dsn = Env("SLUICE_TEST_DATABASE_URL");
  if (!dsn.empty()) return dsn;
  std::string dir = Env("SLUICE_TEST_PG_DIR");
  if (dir.empty()) return "";
  std::ifstream in(dir + "/dsn");
  std::getline(in, dsn);
  return dsn;
}

std::string DsnWithDatabase(const std::string& dsn, const std::string& database) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    if (error != nullptr) PQfreemem(error);
    return dsn;
  }
  std::string out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string(o->keyword) == "dbname") continue;
    out += fmt::format("{}={} ", o->keyword, Quote(o->val));
  }
  PQconninfoFree(options);
  return out + "dbname=" + Quote(database);
}

Status RestartCluster() {
  std::string dir = Env("SLUICE_TEST_PG_DIR");
  if (dir.empty() || !Env("SLUICE_TEST_DATABASE_URL").empty()) {
    return FailedPrecondition("the cluster was not started by scripts/pg-test-cluster.sh");
  }
  std::string cmd =
      fmt::format("{}/scripts/pg-test-cluster.sh restart '{}'", SLUICE_SOURCE_DIR, dir);
  if (std::system(cmd.c_str()) != 0) return Internal("restart failed: " + cmd);
  return Status::Ok();
}

void PgTest::SetUp() {
  std::string admin = AdminDsn();
  if (admin.empty()) {
    GTEST_SKIP() << "no PostgreSQL: set SLUICE_TEST_DATABASE_URL or run through ctest";
  }
  static std::atomic<int> counter{0};
  std::random_device rd;
  database_ = fmt::format("sluice_t_{}_{}_{}", getpid(), counter++, rd() % 100000);
  StatusOr<PgConnection> conn = PgConnection::Connect(AdminOptions(admin));
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  SLUICE_ASSERT_OK(conn->Execute("CREATE DATABASE " + database_).status());
  dsn_ = DsnWithDatabase(admin, database_);
}

void PgTest::TearDown() {
  if (database_.empty()) return;
  StatusOr<PgConnection> conn = PgConnection::Connect(AdminOptions(AdminDsn()));
  if (conn.ok()) {
    Status s = conn->Execute("DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)").status();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
}

PgConnectionOptions PgTest::Options() const {
  PgConnectionOptions options;
  options.dsn = dsn_;
  options.statement_timeout = std::chrono::seconds(10);
  return options;
}

PgConnection PgTest::Connect() const {
  StatusOr<PgConnection> conn = PgConnection::Connect(Options());
  SLUICE_CHECK(conn.ok()) << conn.status().ToString();
  return std::move(conn).value();
}

std::shared_ptr<PgPool> PgTest::MakePool(int max_size) const {
  PgPoolOptions options;
  options.connection = Options();
  options.max_size = max_size;
  StatusOr<std::unique_ptr<PgPool>> pool = PgPool::Create(options);
  SLUICE_CHECK(pool.ok()) << pool.status().ToString();
  return std::shared_ptr<PgPool>(std::move(pool).value());
}

void PgTest::MigrateAll() const {
  PgConnection conn = Connect();
  StatusOr<MigrationResult> result = sluice::Migrate(conn);
  SLUICE_CHECK(result.ok()) << result.status().ToString();
}

std::string PgTest::Query(const std::string& sql) const {
  PgConnection conn = Connect();
  StatusOr<PgResult> r = conn.Execute(sql);
  SLUICE_CHECK(r.ok()) << sql << ": " << r.status().ToString();
  if (r->rows() == 0 || r->columns() == 0) return "";
  return std::string(r->Raw(0, 0));
}

}  // namespace sluice::testing
