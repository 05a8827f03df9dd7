// Support for the PostgreSQL integration tests: the throwaway cluster's DSN (from
// SLUICE_TEST_DATABASE_URL, or the dsn file of SLUICE_TEST_PG_DIR that the ctest fixture
// writes) and a fresh database per test, so tests can run in parallel on one cluster.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "pg/pg_connection.h"
#include "pg/pg_pool.h"

namespace sluice::testing {

// "" when no cluster is configured (tests skip).
std::string AdminDsn();
// The `dsn` with its database replaced by `database`, as a key=value string.
std::string DsnWithDatabase(const std::string& dsn, const std::string& database);
// Restarts the cluster through scripts/pg-test-cluster.sh; FailedPrecondition when the
// cluster was not started by the fixture (SLUICE_TEST_PG_DIR unset).
Status RestartCluster();

// Creates an empty database in the test cluster and drops it when the test ends.
class PgTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  PgConnectionOptions Options() const;
  PgConnection Connect() const;
  std::shared_ptr<PgPool> MakePool(int max_size = 4) const;
  // Applies every migration.
  void MigrateAll() const;
  // Runs SQL on a fresh connection and returns the first field of the first row as text.
  std::string Query(const std::string& sql) const;

  std::string dsn_;

 private:
  std::string database_;
};

}  // namespace sluice::testing

#define SLUICE_ASSERT_OK(expr)                                     \
  do {                                                             \
    ::sluice::Status assert_status_ = (expr);                      \
    ASSERT_TRUE(assert_status_.ok()) << assert_status_.ToString(); \
  } while (false)
