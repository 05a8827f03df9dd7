#include "worker/vectorizer.h"

#include <gtest/gtest.h>

#include <charconv>
#include <string>
#include <vector>

#include "backends/model_loader.h"
#include "common/check.h"
#include "pg_test_env.h"

namespace sluice {
namespace {

using testing::PgTest;

LoadedModel& Model() {
  static LoadedModel* model = [] {
    LoadOptions load;
    load.model_dir = std::string(SLUICE_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
    load.cpu_threads = 2;
    StatusOr<LoadedModel> m = LoadModel(load);
    SLUICE_CHECK(m.ok()) << m.status().ToString();
    return new LoadedModel(std::move(m).value());
  }();
  return *model;
}

// "{0.1,0.2}" -> floats.
std::vector<float> ParseRealArray(std::string_view s) {
  std::vector<float> out;
  SLUICE_CHECK(s.size() >= 2 && s.front() == '{' && s.back() == '}') << s;
  const char* p = s.data() + 1;
  const char* end = s.data() + s.size() - 1;
  while (p < end) {
    float v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    SLUICE_CHECK(ec == std::errc()) << s;
    out.push_back(v);
    p = next + 1;  // skip ','
  }
  return out;
}

class VectorizerTest : public PgTest {
 protected:
  void SetUp() override {
    PgTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    EmbedderOptions options;
    options.max_seq_length = static_cast<size_t>(Model().dir.max_seq_length);
    options.normalize = Model().dir.normalize;
    embedder_ = std::make_unique<Embedder>(*Model().tokenizer, *Model().backend, options);
  }

  StatusOr<std::unique_ptr<Vectorizer>> Make(const std::string& table, const std::string& id,
                                             const std::string& text, const std::string& target,
                                             size_t batch_size = 16) {
    VectorizerOptions o;
    o.table = table;
    o.id_column = id;
    o.text_column = text;
    o.target_column = target;
    o.batch_size = batch_size;
    return Vectorizer::Create(o, Connect(), embedder_.get());
  }

  std::vector<float> Reference(const std::string& text) {
    std::vector<float> out;
    SLUICE_CHECK(embedder_->Embed({text}, &out).ok());
    return out;
  }

  void ExpectRowMatches(const std::string& select_vector, const std::string& text) {
    std::vector<float> got = ParseRealArray(Query(select_vector));
    std::vector<float> want = Reference(text);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-6) << i;
  }

  std::unique_ptr<Embedder> embedder_;
};

TEST_F(VectorizerTest, FillsRealArrayColumnInBatches) {
  Query("CREATE TABLE docs (id bigint PRIMARY KEY, body text, embedding real[])");
  Query("INSERT INTO docs SELECT i, 'document number ' || i, NULL FROM generate_series(1, 50) i");
  Query("INSERT INTO docs VALUES (51, NULL, NULL)");  // no text: left alone
  auto v = Make("docs", "id", "body", "embedding", 16);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->target().type, VectorColumnType::kRealArray);
  EXPECT_EQ(*(*v)->CountPending(), 50);
  std::vector<int64_t> progress;
  StatusOr<int64_t> done = (*v)->Run([&](int64_t n) { progress.push_back(n); });
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(*done, 50);
  EXPECT_EQ(progress, (std::vector<int64_t>{16, 32, 48, 50}));
  EXPECT_EQ(Query("SELECT count(*) FROM docs WHERE embedding IS NULL"), "1");
  EXPECT_EQ(Query("SELECT array_length(embedding, 1) FROM docs WHERE id = 7"), "384");
  ExpectRowMatches("SELECT embedding FROM docs WHERE id = 7", "document number 7");
  ExpectRowMatches("SELECT embedding FROM docs WHERE id = 50", "document number 50");
  EXPECT_EQ(*(*v)->CountPending(), 0);
}

TEST_F(VectorizerTest, ResumesWithOnlyTheRowsStillNull) {
  Query("CREATE TABLE docs (id int PRIMARY KEY, body text, embedding real[])");
  Query("INSERT INTO docs SELECT i, 'text ' || i, NULL FROM generate_series(1, 20) i");
  // Rows done by a run that crashed half way keep their vectors.
  Query("UPDATE docs SET embedding = '{1,2,3}' WHERE id <= 10");
  auto v = Make("docs", "id", "body", "embedding", 4);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*(*v)->Run(), 10);
  EXPECT_EQ(Query("SELECT embedding FROM docs WHERE id = 3"), "{1,2,3}");
  ExpectRowMatches("SELECT embedding FROM docs WHERE id = 15", "text 15");
  EXPECT_EQ(*(*v)->Run(), 0);  // a second run finds nothing to do
}

TEST_F(VectorizerTest, TextKeysAndIdentifiersThatNeedQuoting) {
  Query("CREATE SCHEMA \"My Schema\"");
  Query(
      "CREATE TABLE \"My Schema\".\"Odd \"\"Table\"\"\" (\"Key\" text PRIMARY KEY, "
      "\"the text\" varchar(100), \"vec; DROP TABLE x\" real[])");
  Query(
      "INSERT INTO \"My Schema\".\"Odd \"\"Table\"\"\" VALUES ('b', 'beta', NULL), "
      "('a', 'alpha', NULL), ('c', 'gamma', NULL)");
  auto v = Make("My Schema.Odd \"Table\"", "Key", "the text", "vec; DROP TABLE x", 2);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*(*v)->Run(), 3);
  ExpectRowMatches(
      "SELECT \"vec; DROP TABLE x\" FROM \"My Schema\".\"Odd \"\"Table\"\"\" WHERE \"Key\" = 'a'",
      "alpha");
}

TEST_F(VectorizerTest, BadTablesAndColumnsAreClearErrors) {
  Query(
      "CREATE TABLE docs (id bigint PRIMARY KEY, body text, embedding real[], label text, "
      "scores double precision[])");
  struct Case {
    const char* table;
    const char* id;
    const char* text;
    const char* target;
    StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"nope", "id", "body", "embedding", StatusCode::kNotFound, "table nope does not exist"},
      {"public.nope", "id", "body", "embedding", StatusCode::kNotFound, "does not exist"},
      {"Docs", "id", "body", "embedding", StatusCode::kNotFound, "table Docs does not exist"},
      {"a.b.c", "id", "body", "embedding", StatusCode::kInvalidArgument, "schema.name"},
      {"docs", "nope", "body", "embedding", StatusCode::kNotFound, "column \"nope\""},
      {"docs", "id", "nope", "embedding", StatusCode::kNotFound, "column \"nope\""},
      {"docs", "id", "body", "nope", StatusCode::kNotFound, "column \"nope\""},
      {"docs", "id", "body", "label", StatusCode::kInvalidArgument, "has type text"},
      {"docs", "id", "body", "scores", StatusCode::kInvalidArgument, "double precision[]"},
      {"docs", "id", "body", "", StatusCode::kInvalidArgument, "must all be given"},
  };
  for (const Case& c : cases) {
    auto v = Make(c.table, c.id, c.text, c.target);
    ASSERT_FALSE(v.ok()) << c.table << " " << c.target;
    EXPECT_EQ(v.status().code(), c.code) << v.status().ToString();
    EXPECT_NE(v.status().message().find(c.message), std::string::npos) << v.status().ToString();
  }
}

TEST_F(VectorizerTest, DetectsPgvectorOnlyThroughTheExtension) {
  // pgvector is not installed here: a user type named "vector" must not pass for it.
  Query("CREATE DOMAIN vector AS real[]");
  Query("CREATE TABLE docs (id int PRIMARY KEY, body text, a real[], b vector)");
  PgConnection conn = Connect();
  auto a = Vectorizer::InspectTargetColumn(conn, "docs", "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->type, VectorColumnType::kRealArray);
  auto b = Vectorizer::InspectTargetColumn(conn, "docs", "b");
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  if (Query("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") == "1") {
    GTEST_SKIP() << "pgvector available: covered by the extension's own type";
  }
}

}  // namespace
}  // namespace sluice
