#include "pg/pg_migrations.h"

#include <gtest/gtest.h>

#include <thread>

#include "pg_test_env.h"

namespace sluice {
namespace {

using testing::PgTest;

TEST(PgMigrationsListTest, VersionsIncreaseFromOne) {
  std::span<const Migration> all = Migrations();
  ASSERT_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int>(i) + 1);
    EXPECT_STRNE(all[i].name, "");
  }
  EXPECT_EQ(RequiredSchemaVersion(), all.back().version);
}

class PgMigrationsTest : public PgTest {};

TEST_F(PgMigrationsTest, FreshDatabaseIsRefusedThenMigrated) {
  PgConnection conn = Connect();
  EXPECT_EQ(*SchemaVersion(conn), 0);
  Status check = CheckSchema(conn);
  EXPECT_EQ(check.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(check.message(), "database schema is at version 0, this sluice needs " +
                                 std::to_string(RequiredSchemaVersion()) +
                                 ": run `sluice migrate`");

  StatusOr<MigrationResult> result = Migrate(conn);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->from_version, 0);
  EXPECT_EQ(result->to_version, RequiredSchemaVersion());
  SLUICE_ASSERT_OK(CheckSchema(conn));
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.schema_migrations"),
            std::to_string(RequiredSchemaVersion()));
  EXPECT_EQ(Query("SELECT to_regclass('sluice.jobs') IS NOT NULL AND "
                  "to_regclass('sluice.embedding_cache') IS NOT NULL"),
            "t");
}

TEST_F(PgMigrationsTest, SecondRunIsANoOp) {
  PgConnection conn = Connect();
  ASSERT_TRUE(Migrate(conn).ok());
  StatusOr<MigrationResult> again = Migrate(conn);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->from_version, RequiredSchemaVersion());
  EXPECT_EQ(again->to_version, RequiredSchemaVersion());
}

TEST_F(PgMigrationsTest, ConcurrentRunsApplyEachMigrationOnce) {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  std::vector<int> applied(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      StatusOr<PgConnection> conn = PgConnection::Connect(Options());
      if (!conn.ok()) {
        results[t] = conn.status();
        return;
      }
      StatusOr<MigrationResult> r = Migrate(*conn);
      results[t] = r.status();
      if (r.ok()) applied[t] = r->to_version - r->from_version;
    });
  }
  for (std::thread& t : threads) t.join();
  int total = 0;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(results[t].ok()) << results[t].ToString();
    total += applied[t];
  }
  // Exactly one run applied everything; the others found it done.
  EXPECT_EQ(total, RequiredSchemaVersion());
  EXPECT_EQ(Query("SELECT count(*) FROM sluice.schema_migrations"),
            std::to_string(RequiredSchemaVersion()));
}

TEST_F(PgMigrationsTest, OlderSchemaIsRefusedWithInstructions) {
  if (RequiredSchemaVersion() < 2) GTEST_SKIP() << "needs two migrations";
  PgConnection conn = Connect();
  StatusOr<MigrationResult> partial = Migrate(conn, 1);
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  EXPECT_EQ(partial->to_version, 1);
  Status check = CheckSchema(conn);
  EXPECT_EQ(check.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(check.message(), "database schema is at version 1, this sluice needs " +
                                 std::to_string(RequiredSchemaVersion()) +
                                 ": run `sluice migrate`");
  StatusOr<MigrationResult> rest = Migrate(conn);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->from_version, 1);
  SLUICE_ASSERT_OK(CheckSchema(conn));
}

TEST_F(PgMigrationsTest, NewerSchemaIsRefused) {
  PgConnection conn = Connect();
  ASSERT_TRUE(Migrate(conn).ok());
  Query("INSERT INTO sluice.schema_migrations (version, name) VALUES (999, 'from the future')");
  Status check = CheckSchema(conn);
  EXPECT_EQ(check.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(check.message().find("at version 999, newer than this sluice"), std::string::npos)
      << check.message();
  StatusOr<MigrationResult> migrate = Migrate(conn);
  EXPECT_EQ(migrate.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(PgMigrationsTest, BadTargetVersionIsInvalidArgument) {
  PgConnection conn = Connect();
  EXPECT_EQ(Migrate(conn, RequiredSchemaVersion() + 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Migrate(conn, -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*SchemaVersion(conn), 0);
}

TEST_F(PgMigrationsTest, PlainSqlInsertsAreValidated) {
  MigrateAll();
  PgConnection conn = Connect();
  EXPECT_TRUE(conn.Execute("INSERT INTO sluice.jobs (model, input) VALUES ('m', '[\"a\"]')").ok());
  for (const char* input : {"'[]'", "'\"a\"'", "'[1, \"a\"]'", "'{\"a\": 1}'", "'[null]'"}) {
    StatusOr<PgResult> r = conn.Execute(
        std::string("INSERT INTO sluice.jobs (model, input) VALUES ('m', ") + input + ")");
    ASSERT_FALSE(r.ok()) << input;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find("23514"), std::string::npos);  // check_violation
  }
}

}  // namespace
}  // namespace sluice
