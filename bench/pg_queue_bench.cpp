// pg_queue_bench: the cost of the PostgreSQL job queue and cache tier, without any model.
//   pg_queue_bench --database-url URL [--jobs N] [--batch N]
// Works in a scratch database it creates next to URL's and drops afterwards (needs CREATEDB).
// Prints claim+complete cost per batch and jobs/s for 1, 2 and 4 worker threads (completing
// jobs one statement each, or the whole batch in one pipeline), and the
// latency of PgCacheStore::GetMany.
#include <libpq-fe.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "fmt/format.h"
#include "pg/pg_cache_store.h"
#include "pg/pg_job_queue.h"
#include "pg/pg_migrations.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string WithDatabase(const std::string& dsn, const std::string& db) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    if (error != nullptr) PQfreemem(error);
    return dsn;
  }
  std::string out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string(o->keyword) == "dbname") continue;
    std::string value = o->val;
    std::string quoted;
    for (char c : value) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    out += fmt::format("{}='{}' ", o->keyword, quoted);
  }
  PQconninfoFree(options);
  return out + "dbname=" + db;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

Status RunQueue(const std::shared_ptr<PgPool>& pool, PgConnection& admin, int jobs, int batch) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<PgJobQueue> queue, PgJobQueue::Create(pool));
  std::printf("\njob queue: %d jobs of one input (result: 384 floats), claim batch %d\n", jobs,
              batch);
  std::printf("%-10s %-8s %10s %14s %14s %18s\n", "complete", "threads", "jobs/s", "batch ms p50",
              "claim ms p50", "complete ms/job");
  std::vector<float> vector(384, 0.5f);
  for (bool pipelined : {false, true})
    for (int threads : {1, 2, 4}) {
      SLUICE_RETURN_IF_ERROR(admin.ExecuteScript(
          fmt::format("TRUNCATE sluice.jobs; INSERT INTO sluice.jobs (model, input) "
                      "SELECT 'm', jsonb_build_array('text ' || i) FROM generate_series(1, {}) i",
                      jobs)));
      SLUICE_RETURN_IF_ERROR(admin.ExecuteScript("VACUUM ANALYZE sluice.jobs"));
      std::atomic<int> done{0};
      std::atomic<bool> failed{false};
      std::vector<std::vector<double>> batch_ms(threads), claim_ms(threads), complete_ms(threads);
      auto start = Clock::now();
      std::vector<std::thread> workers;
      for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
          std::string worker = "bench-" + std::to_string(t);
          while (true) {
            auto t0 = Clock::now();
            StatusOr<std::vector<ClaimedJob>> claimed =
                queue->Claim(worker, batch, milliseconds(60000));
            auto t1 = Clock::now();
            if (!claimed.ok()) {
              std::fprintf(stderr, "claim: %s\n", claimed.status().ToString().c_str());
              failed = true;
              return;
            }
            if (claimed->empty()) return;
            if (pipelined) {
              std::vector<PgJobQueue::Completion> batch_done;
              for (const ClaimedJob& job : *claimed) {
                batch_done.push_back({job.id, job.attempt, {vector}});
              }
              StatusOr<std::vector<bool>> won = queue->CompleteMany(batch_done);
              if (!won.ok() || std::count(won->begin(), won->end(), false) > 0) failed = true;
            } else {
              for (const ClaimedJob& job : *claimed) {
                StatusOr<bool> won = queue->Complete(job.id, job.attempt, {vector});
                if (!won.ok() || !*won) failed = true;
              }
            }
            auto t2 = Clock::now();
            done += static_cast<int>(claimed->size());
            auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
            claim_ms[t].push_back(ms(t1 - t0));
            complete_ms[t].push_back(ms(t2 - t1) / static_cast<double>(claimed->size()));
            if (static_cast<int>(claimed->size()) == batch) batch_ms[t].push_back(ms(t2 - t0));
          }
        });
      }
      for (std::thread& w : workers) w.join();
      double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (failed) return Internal("a worker failed");
      std::vector<double> all_batch, all_claim, all_complete;
      for (int t = 0; t < threads; ++t) {
        all_batch.insert(all_batch.end(), batch_ms[t].begin(), batch_ms[t].end());
        all_claim.insert(all_claim.end(), claim_ms[t].begin(), claim_ms[t].end());
        all_complete.insert(all_complete.end(), complete_ms[t].begin(), complete_ms[t].end());
      }
      std::printf("%-10s %-8d %10.0f %14.2f %14.3f %18.3f\n", pipelined ? "pipelined" : "each",
                  threads, done.load() / seconds, Percentile(all_batch, 0.5),
                  Percentile(all_claim, 0.5), Percentile(all_complete, 0.5));
    }
  return Status::Ok();
}

Status RunCache(const std::shared_ptr<PgPool>& pool, int rows, int lookups, int keys_per_lookup) {
  PgCacheStoreOptions options;
  options.get_timeout = milliseconds(1000);
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<PgCacheStore> store, PgCacheStore::Create(pool, options));
  std::mt19937_64 rng(7);
  auto key_of = [](int i) {
    CacheKey k;
    std::mt19937_64 g(static_cast<uint64_t>(i));
    for (uint8_t& b : k.digest) b = static_cast<uint8_t>(g());
    return k;
  };
  std::vector<float> vector(384, 0.25f);
  auto fill_start = Clock::now();
  for (int i = 0; i < rows; i += 500) {
    std::vector<CacheEntry> entries;
    for (int j = i; j < std::min(rows, i + 500); ++j) entries.push_back({key_of(j), vector});
    store->PutAsync(std::move(entries), "bench@1");
    SLUICE_RETURN_IF_ERROR(store->Flush());
  }
  double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();
  std::vector<double> us;
  for (int n = 0; n < lookups; ++n) {
    std::vector<CacheKey> keys;
    // Three in four keys exist.
    for (int k = 0; k < keys_per_lookup; ++k) {
      keys.push_back(key_of(static_cast<int>(rng() % static_cast<uint64_t>(rows * 4 / 3))));
    }
    auto t0 = Clock::now();
    auto got = store->GetMany(keys, "bench@1");
    if (!got.ok()) return got.status();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  PgCacheStoreStats stats = store->stats();
  std::printf(
      "\ncache tier: %d rows of 384 floats written in %.2f s (%.0f rows/s, batches of 500)\n", rows,
      fill_s, rows / fill_s);
  std::printf(
      "GetMany of %d keys (%.0f%% hits), %d calls: p50 %.0f us, p99 %.0f us\n", keys_per_lookup,
      100.0 * static_cast<double>(stats.hits) / static_cast<double>(stats.hits + stats.misses),
      lookups, Percentile(us, 0.5), Percentile(us, 0.99));
  return Status::Ok();
}

int Main(int argc, char** argv) {
  CLI::App app{"PostgreSQL queue and cache benchmark"};
  std::string url;
  int jobs = 20000;
  int batch = 32;
  int rows = 20000;
  int lookups = 2000;
  int keys = 32;
  app.add_option("--database-url", url)->envname("SLUICE_BENCH_DATABASE_URL")->required();
  app.add_option("--jobs", jobs);
  app.add_option("--batch", batch);
  app.add_option("--cache-rows", rows);
  app.add_option("--lookups", lookups);
  app.add_option("--keys", keys);
  CLI11_PARSE(app, argc, argv);

  PgConnectionOptions admin_options;
  admin_options.dsn = url;
  StatusOr<PgConnection> admin = PgConnection::Connect(admin_options);
  if (!admin.ok()) {
    std::fprintf(stderr, "pg_queue_bench: %s\n", admin.status().message().c_str());
    return 1;
  }
  std::string db = fmt::format("sluice_bench_{}", getpid());
  if (Status s = admin->Execute("CREATE DATABASE " + db).status(); !s.ok()) {
    std::fprintf(stderr, "pg_queue_bench: %s\n", s.message().c_str());
    return 1;
  }
  Status status;
  {
    PgPoolOptions pool_options;
    pool_options.connection.dsn = WithDatabase(url, db);
    pool_options.max_size = 8;
    std::shared_ptr<PgPool> pool(PgPool::Create(pool_options).value());
    StatusOr<PgConnection> conn = PgConnection::Connect(pool_options.connection);
    status = conn.status();
    if (status.ok()) status = Migrate(*conn).status();
    if (status.ok()) {
      std::printf("PostgreSQL %d, server %s\n", conn->server_version(), url.c_str());
      status = RunQueue(pool, *conn, jobs, batch);
    }
    if (status.ok()) status = RunCache(pool, rows, lookups, keys);
  }
  admin->Execute("DROP DATABASE " + db + " WITH (FORCE)").status().ok();
  if (!status.ok()) {
    std::fprintf(stderr, "pg_queue_bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) { return sluice::Main(argc, argv); }
