// PgCacheStore: the shared cache tier in sluice.embedding_cache, seen through CacheStore.
// GetMany is one round trip with a short deadline; PutAsync only queues, and a writer thread
// batches inserts and the aggregated hit counts into one pipelined round trip, so the request
// path never waits on a write. When PostgreSQL is slow or down GetMany fails fast with
// Unavailable (the tier is bypassed, counted), and the writer thread reconnects with backoff.
// Thread-safety: all methods are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/cache_store.h"
#include "pg/pg_pool.h"

namespace sluice {

struct PgCacheStoreOptions {
  // Everything GetMany may spend: waiting for a connection plus the query.
  std::chrono::milliseconds get_timeout{100};
  // Entries waiting to be written; PutAsync drops (and counts) what does not fit.
  size_t max_queued_entries = 20000;
  size_t write_batch_entries = 500;
  // How often queued entries and hit counts are written when fewer than a batch wait.
  std::chrono::milliseconds flush_interval{250};
  // Distinct keys whose hits are aggregated between flushes; further hits are not counted.
  size_t max_pending_hit_keys = 100000;
  // Eviction: rows not read for `ttl` (0: never), and the least recently read rows beyond
  // `max_rows` (0: no cap), every `evict_interval`.
  std::chrono::seconds ttl{std::chrono::hours(24 * 7)};
  int64_t max_rows = 0;
  std::chrono::milliseconds evict_interval{60000};
  // Bypass window after a failure, doubling up to the max while PostgreSQL stays away.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

struct PgCacheStoreStats {
  int64_t hits = 0;          // keys found by GetMany
  int64_t misses = 0;        // keys looked up and not found
  int64_t bypassed = 0;      // GetMany calls answered Unavailable
  int64_t queued = 0;        // entries accepted by PutAsync
  int64_t dropped = 0;       // entries dropped: queue full, or their batch failed
  int64_t written = 0;       // entries sent in successful batches (new rows or not)
  int64_t write_errors = 0;  // failed flushes
  int64_t hit_updates = 0;   // rows whose hits/last_access were flushed
  int64_t evicted = 0;       // rows deleted by eviction
};

class PgCacheStore final : public CacheStore {
 public:
  // Checks the schema version on one connection and starts the writer thread.
  static StatusOr<std::unique_ptr<PgCacheStore>> Create(std::shared_ptr<PgPool> pool,
                                                        PgCacheStoreOptions options = {});
  // Stops the writer after one last flush attempt.
  ~PgCacheStore() override;
  PgCacheStore(const PgCacheStore&) = delete;
  PgCacheStore& operator=(const PgCacheStore&) = delete;

  StatusOr<std::vector<std::optional<std::vector<float>>>> GetMany(
      std::span<const CacheKey> keys, const std::string& model_version) override;
  void PutAsync(std::vector<CacheEntry> entries, const std::string& model_version) override;

  // Writes everything queued so far and the pending hit counts, now (tests, shutdown).
  Status Flush();
  // Runs eviction now; returns the number of rows deleted.
  StatusOr<int64_t> EvictNow();
  PgCacheStoreStats stats() const;

 private:
  struct QueuedEntry {
    CacheKey key;
    std::string model_version;
    std::vector<float> vector;
  };
  struct KeyHash {
    size_t operator()(const CacheKey& k) const;
  };

  PgCacheStore(std::shared_ptr<PgPool> pool, PgCacheStoreOptions options);
  void WriterLoop();
  // Writes up to one batch of entries plus the pending hits; REQUIRES flush_mu_ held.
  Status FlushBatch(bool* more);
  void NoteFailure(const Status& status, const char* what);
  void NoteSuccess();
  // True from a failure until the writer thread's probe succeeds again.
  bool Bypassing() const;
  Status Probe();

  const std::shared_ptr<PgPool> pool_;
  const PgCacheStoreOptions options_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<QueuedEntry> queue_;                                // GUARDED_BY(mu_)
  std::unordered_map<CacheKey, int64_t, KeyHash> pending_hits_;  // GUARDED_BY(mu_)
  bool stop_ = false;                                            // GUARDED_BY(mu_)
  std::mutex flush_mu_;  // one flush at a time (writer thread or Flush())

  // Health: while down_, GetMany skips PostgreSQL; the writer probes at bypass_until_
  // (steady_clock ticks), backing off while probes fail.
  std::atomic<int64_t> bypass_until_{0};
  std::atomic<int64_t> backoff_ms_{0};
  std::atomic<bool> down_{false};

  std::atomic<int64_t> hits_{0}, misses_{0}, bypassed_{0}, queued_{0}, dropped_{0}, written_{0},
      write_errors_{0}, hit_updates_{0}, evicted_{0};

  std::thread writer_;
};

}  // namespace sluice
