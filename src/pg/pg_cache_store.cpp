#include "pg/pg_cache_store.h"

#include <algorithm>
#include <cstring>

#include "common/logging.h"
#include "fmt/format.h"
#include "pg/pg_float_codec.h"
#include "pg/pg_migrations.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr PgStatement kGet = {"sluice_cache_get",
                              "SELECT key, vector FROM sluice.embedding_cache "
                              "WHERE key = ANY($1::bytea[]) AND model_version = $2::text"};

// Entries arrive sorted by key, so two writers inserting overlapping batches wait on each other
// in the same order and cannot deadlock.
constexpr PgStatement kInsert = {
    "sluice_cache_insert",
    "INSERT INTO sluice.embedding_cache (key, model_version, vector) "
    "SELECT k, m, v FROM unnest($1::bytea[], $2::text[], $3::bytea[]) AS u(k, m, v) "
    "ON CONFLICT (key) DO NOTHING"};

// Hit counts aggregated in memory; rows are locked in key order first (same deadlock reason).
constexpr PgStatement kHits = {
    "sluice_cache_hits",
    "WITH h AS (SELECT k, n FROM unnest($1::bytea[], $2::int8[]) AS u(k, n)),"
    " l AS (SELECT c.key FROM sluice.embedding_cache c JOIN h ON c.key = h.k"
    "       ORDER BY c.key FOR NO KEY UPDATE OF c) "
    "UPDATE sluice.embedding_cache c SET hits = c.hits + h.n, last_access = now() "
    "FROM h JOIN l ON l.key = h.k WHERE c.key = h.k"};

constexpr PgStatement kEvictExpired = {
    "sluice_cache_evict_expired",
    "DELETE FROM sluice.embedding_cache "
    "WHERE last_access < now() - $1::int8 * interval '1 second'"};

constexpr PgStatement kEvictOverCap = {
    "sluice_cache_evict_over_cap",
    "DELETE FROM sluice.embedding_cache c USING ("
    "  SELECT key FROM sluice.embedding_cache ORDER BY last_access, key"
    "  LIMIT greatest((SELECT count(*) FROM sluice.embedding_cache) - $1::int8, 0)) old "
    "WHERE c.key = old.key"};

std::string_view KeyBytes(const CacheKey& key) {
  return {reinterpret_cast<const char*>(key.digest.data()), key.digest.size()};
}

int64_t Ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

}  // namespace

size_t PgCacheStore::KeyHash::operator()(const CacheKey& k) const {
  size_t h;
  std::memcpy(&h, k.digest.data(), sizeof(h));  // a SHA-256 prefix is already uniform
  return h;
}

StatusOr<std::unique_ptr<PgCacheStore>> PgCacheStore::Create(std::shared_ptr<PgPool> pool,
                                                             PgCacheStoreOptions options) {
  if (options.get_timeout.count() <= 0 || options.write_batch_entries == 0 ||
      options.max_queued_entries == 0 || options.flush_interval.count() <= 0 ||
      options.evict_interval.count() <= 0 || options.min_backoff.count() <= 0 ||
      options.max_backoff < options.min_backoff || options.max_rows < 0 ||
      options.ttl.count() < 0) {
    return InvalidArgument("PostgreSQL cache store: timeouts, sizes and intervals must be > 0");
  }
  {
    SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool->Acquire());
    SLUICE_RETURN_IF_ERROR(CheckSchema(*conn));
  }
  return std::unique_ptr<PgCacheStore>(new PgCacheStore(std::move(pool), options));
}

PgCacheStore::PgCacheStore(std::shared_ptr<PgPool> pool, PgCacheStoreOptions options)
    : pool_(std::move(pool)), options_(options) {
  writer_ = std::thread([this] { WriterLoop(); });
}

PgCacheStore::~PgCacheStore() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
  // A last write only when the server is reachable: shutdown must not wait on a dead host.
  if (!down_.load()) Flush().ok();
}

bool PgCacheStore::Bypassing() const { return down_.load(); }

void PgCacheStore::NoteFailure(const Status& status, const char* what) {
  int64_t backoff = backoff_ms_.load();
  backoff = backoff == 0 ? options_.min_backoff.count()
                         : std::min<int64_t>(backoff * 2, options_.max_backoff.count());
  backoff_ms_.store(backoff);
  bypass_until_.store(Ticks(Clock::now() + milliseconds(backoff)));
  if (!down_.exchange(true)) {
    SLUICE_LOG_WARN("PostgreSQL cache tier bypassed ({} failed: {}); reconnecting in background",
                    what, status.message());
    // The writer schedules its first probe. Taking mu_ orders this after its predicate check.
    { std::lock_guard lock(mu_); }
    wake_.notify_all();
  }
}

void PgCacheStore::NoteSuccess() {
  backoff_ms_.store(0);
  bypass_until_.store(0);
  if (down_.exchange(false)) SLUICE_LOG_INFO("PostgreSQL cache tier is back");
}

StatusOr<std::vector<std::optional<std::vector<float>>>> PgCacheStore::GetMany(
    std::span<const CacheKey> keys, const std::string& model_version) {
  std::vector<std::optional<std::vector<float>>> out(keys.size());
  if (keys.empty()) return out;
  if (Bypassing()) {
    bypassed_.fetch_add(1);
    return Unavailable("PostgreSQL cache tier bypassed after a failure; retrying shortly");
  }
  Clock::time_point deadline = Clock::now() + options_.get_timeout;
  StatusOr<PgPool::Handle> conn = pool_->Acquire(options_.get_timeout);
  if (!conn.ok()) {
    NoteFailure(conn.status(), "lookup");
    bypassed_.fetch_add(1);
    return Unavailable(conn.status().message());
  }
  std::vector<std::string_view> key_bytes;
  key_bytes.reserve(keys.size());
  for (const CacheKey& k : keys) key_bytes.push_back(KeyBytes(k));
  milliseconds left =
      std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  StatusOr<PgResult> rows = (*conn)->ExecutePrepared(
      kGet, PgParams().ByteaArray(key_bytes).Text(model_version), PgFormat::kBinary, left);
  if (!rows.ok()) {
    NoteFailure(rows.status(), "lookup");
    bypassed_.fetch_add(1);
    return Unavailable(rows.status().message());
  }
  std::unordered_map<CacheKey, std::vector<float>, KeyHash> found;
  for (int row = 0; row < rows->rows(); ++row) {
    std::string_view key = rows->Raw(row, 0);
    StatusOr<std::vector<float>> vector = DecodeFloats(rows->Raw(row, 1));
    if (key.size() != 32 || !vector.ok() || vector->empty()) continue;  // treated as a miss
    CacheKey k;
    std::memcpy(k.digest.data(), key.data(), key.size());
    found.emplace(k, std::move(vector).value());
  }
  int64_t hits = 0;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = found.find(keys[i]);
      if (it == found.end()) continue;
      out[i] = it->second;
      ++hits;
      auto hit = pending_hits_.find(keys[i]);
      if (hit != pending_hits_.end()) {
        ++hit->second;
      } else if (pending_hits_.size() < options_.max_pending_hit_keys) {
        pending_hits_.emplace(keys[i], 1);
      }
    }
  }
  hits_.fetch_add(hits);
  misses_.fetch_add(static_cast<int64_t>(keys.size()) - hits);
  NoteSuccess();
  return out;
}

void PgCacheStore::PutAsync(std::vector<CacheEntry> entries, const std::string& model_version) {
  int64_t accepted = 0;
  int64_t refused = 0;
  bool full_batch = false;
  {
    std::lock_guard lock(mu_);
    for (CacheEntry& e : entries) {
      if (e.vector.empty() || queue_.size() >= options_.max_queued_entries) {
        ++refused;
        continue;
      }
      queue_.push_back(QueuedEntry{e.key, model_version, std::move(e.vector)});
      ++accepted;
    }
    full_batch = queue_.size() >= options_.write_batch_entries;
  }
  queued_.fetch_add(accepted);
  dropped_.fetch_add(refused);
  if (full_batch) wake_.notify_one();
}

Status PgCacheStore::FlushBatch(bool* more) {
  std::vector<QueuedEntry> batch;
  std::unordered_map<CacheKey, int64_t, KeyHash> hits;
  {
    std::lock_guard lock(mu_);
    size_t n = std::min(queue_.size(), options_.write_batch_entries);
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    *more = !queue_.empty();
    hits.swap(pending_hits_);
  }
  if (batch.empty() && hits.empty()) return Status::Ok();

  std::sort(batch.begin(), batch.end(),
            [](const QueuedEntry& a, const QueuedEntry& b) { return a.key.digest < b.key.digest; });
  batch.erase(
      std::unique(batch.begin(), batch.end(),
                  [](const QueuedEntry& a, const QueuedEntry& b) { return a.key == b.key; }),
      batch.end());
  std::vector<PgCommand> commands;
  if (!batch.empty()) {
    std::vector<std::string_view> keys;
    std::vector<std::string> versions;
    std::vector<std::string> vectors(batch.size());
    std::vector<std::string_view> vector_views;
    for (size_t i = 0; i < batch.size(); ++i) {
      keys.push_back(KeyBytes(batch[i].key));
      versions.push_back(batch[i].model_version);
      AppendFloats(batch[i].vector, vectors[i]);
      vector_views.push_back(vectors[i]);
    }
    PgParams params;
    params.ByteaArray(keys).TextArray(versions).ByteaArray(vector_views);
    commands.push_back(PgCommand{&kInsert, std::move(params)});
  }
  if (!hits.empty()) {
    std::vector<std::pair<CacheKey, int64_t>> sorted(hits.begin(), hits.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.first.digest < b.first.digest; });
    std::vector<std::string_view> keys;
    std::vector<int64_t> counts;
    for (const auto& [key, count] : sorted) {
      keys.push_back(KeyBytes(key));
      counts.push_back(count);
    }
    PgParams params;
    params.ByteaArray(keys).Int64Array(counts);
    commands.push_back(PgCommand{&kHits, std::move(params)});
  }

  auto fail = [&](const Status& status) {
    dropped_.fetch_add(static_cast<int64_t>(batch.size()));
    write_errors_.fetch_add(1);
    NoteFailure(status, "write");
    *more = false;
    return status;
  };
  StatusOr<PgPool::Handle> conn = pool_->Acquire();
  if (!conn.ok()) return fail(conn.status());
  StatusOr<std::vector<PgResult>> results = (*conn)->ExecutePipeline(commands);
  if (!results.ok()) return fail(results.status());
  written_.fetch_add(static_cast<int64_t>(batch.size()));
  if (!hits.empty()) hit_updates_.fetch_add(results->back().affected_rows());
  NoteSuccess();
  return Status::Ok();
}

void PgCacheStore::WriterLoop() {
  Clock::time_point next_evict = Clock::now() + options_.evict_interval;
  std::unique_lock lock(mu_);
  while (!stop_) {
    // While the tier is down, wake when the backoff ends to probe, however long the flush
    // interval: the bypass lasts until a probe succeeds.
    Clock::duration wait = options_.flush_interval;
    if (down_.load()) {
      Clock::duration until_retry =
          Clock::duration(bypass_until_.load()) - Clock::now().time_since_epoch();
      wait = std::clamp<Clock::duration>(until_retry, milliseconds(1), wait);
    }
    bool was_down = down_.load();
    wake_.wait_for(lock, wait, [&] {
      return stop_ || queue_.size() >= options_.write_batch_entries || down_.load() != was_down;
    });
    if (stop_) break;
    lock.unlock();
    if (!down_.load() || Ticks(Clock::now()) >= bypass_until_.load()) {
      std::lock_guard flush_lock(flush_mu_);
      if (down_.load()) {
        Status probe = Probe();
        if (probe.ok()) {
          NoteSuccess();
        } else {
          NoteFailure(probe, "reconnect");
        }
      }
      bool more = !down_.load();
      while (more) {
        if (!FlushBatch(&more).ok()) break;
      }
      if (!down_.load() && Clock::now() >= next_evict) {
        next_evict = Clock::now() + options_.evict_interval;
        StatusOr<int64_t> evicted = EvictNow();
        if (!evicted.ok()) SLUICE_LOG_WARN("cache eviction: {}", evicted.status().message());
      }
    }
    lock.lock();
  }
}

Status PgCacheStore::Probe() {
  // Opening a connection to a host that went away can take connect_timeout, which is why only
  // this thread does it while the tier is down; the lookup then proves the table answers.
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  return conn
      ->Execute("SELECT 1 FROM sluice.embedding_cache LIMIT 1", PgParams(), PgFormat::kText,
                options_.get_timeout)
      .status();
}

Status PgCacheStore::Flush() {
  std::lock_guard flush_lock(flush_mu_);
  bool more = true;
  while (more) SLUICE_RETURN_IF_ERROR(FlushBatch(&more));
  return Status::Ok();
}

StatusOr<int64_t> PgCacheStore::EvictNow() {
  SLUICE_ASSIGN_OR_RETURN(PgPool::Handle conn, pool_->Acquire());
  int64_t deleted = 0;
  if (options_.ttl.count() > 0) {
    SLUICE_ASSIGN_OR_RETURN(
        PgResult r, conn->ExecutePrepared(kEvictExpired, PgParams().Int64(options_.ttl.count())));
    deleted += r.affected_rows();
  }
  if (options_.max_rows > 0) {
    SLUICE_ASSIGN_OR_RETURN(
        PgResult r, conn->ExecutePrepared(kEvictOverCap, PgParams().Int64(options_.max_rows)));
    deleted += r.affected_rows();
  }
  evicted_.fetch_add(deleted);
  return deleted;
}

PgCacheStoreStats PgCacheStore::stats() const {
  PgCacheStoreStats s;
  s.hits = hits_.load();
  s.misses = misses_.load();
  s.bypassed = bypassed_.load();
  s.queued = queued_.load();
  s.dropped = dropped_.load();
  s.written = written_.load();
  s.write_errors = write_errors_.load();
  s.hit_updates = hit_updates_.load();
  s.evicted = evicted_.load();
  return s;
}

}  // namespace sluice
