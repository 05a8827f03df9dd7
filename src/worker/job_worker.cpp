#include "worker/job_worker.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <utility>

#include "common/logging.h"

namespace sluice {

// One claimed batch on its way through the batcher. `mu` guards the results written by the
// batcher's threads; the claiming thread reads them after `remaining` reached zero.
struct JobWorker::Batch {
  struct Entry {
    ClaimedJob job;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
    StatusOr<std::vector<float>> result = Internal("not computed");
  };
  std::vector<Entry> entries;  // only jobs submitted to the batcher
  std::mutex mu;
  std::condition_variable done_cv;
  size_t remaining = 0;  // GUARDED_BY(mu)
};

JobWorker::JobWorker(JobWorkerOptions options, PgJobQueue* queue, PgListener* listener,
                     const Tokenizer* tokenizer, DynamicBatcher* batcher)
    : options_(std::move(options)),
      queue_(queue),
      listener_(listener),
      tokenizer_(tokenizer),
      batcher_(batcher) {}

StatusOr<std::unique_ptr<JobWorker>> JobWorker::Create(JobWorkerOptions options, PgJobQueue* queue,
                                                       PgListener* listener,
                                                       const Tokenizer* tokenizer,
                                                       DynamicBatcher* batcher) {
  if (queue == nullptr || tokenizer == nullptr || batcher == nullptr) {
    return InvalidArgument("a job worker needs a queue, a tokenizer and a batcher");
  }
  if (options.worker_id.empty()) return InvalidArgument("the worker id must not be empty");
  if (options.models.empty()) return InvalidArgument("the worker must serve at least one model");
  if (options.batch_jobs < 1) return InvalidArgument("batch_jobs must be at least 1");
  if (options.lease < std::chrono::seconds(1)) {
    return InvalidArgument("the lease must be at least one second");
  }
  if (options.max_input_length == 0) return InvalidArgument("max_input_length must be positive");
  if (options.heartbeat_interval.count() <= 0) options.heartbeat_interval = options.lease / 3;
  if (options.heartbeat_interval >= options.lease) {
    return InvalidArgument("the heartbeat interval must be shorter than the lease");
  }
  if (options.poll_interval.count() <= 0) {
    return InvalidArgument("the poll interval must be positive");
  }
  return std::unique_ptr<JobWorker>(
      new JobWorker(std::move(options), queue, listener, tokenizer, batcher));
}

void JobWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_.store(true);
  }
  stop_cv_.notify_all();
}

JobWorkerStats JobWorker::stats() const {
  JobWorkerStats s;
  s.batches = batches_.load();
  s.claimed = claimed_.load();
  s.completed = completed_.load();
  s.lost = lost_.load();
  s.failed = failed_.load();
  s.reclaimed = reclaimed_.load();
  s.cleaned = cleaned_.load();
  s.db_errors = db_errors_.load();
  return s;
}

void JobWorker::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(stop_mu_);
  stop_cv_.wait_for(lock, d, [this] { return stop_.load(); });
}

void JobWorker::WaitForWork() {
  if (listener_ == nullptr) {
    SleepFor(options_.poll_interval);
    return;
  }
  // Short slices, so that Stop() is seen within half a second.
  constexpr std::chrono::milliseconds kSlice{500};
  auto until = std::chrono::steady_clock::now() + options_.poll_interval;
  while (!stopping()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    if (listener_->WaitForNotification(std::min(left, kSlice))) return;
  }
}

void JobWorker::NoteDbError(const Status& status, const char* what) {
  db_errors_.fetch_add(1);
  if (!db_down_) {
    SLUICE_LOG_WARN("job queue: {} failed, retrying with backoff: {}", what, status.ToString());
    db_down_ = true;
  }
  error_backoff_ = std::min(options_.max_error_backoff,
                            std::max(std::chrono::milliseconds(100), error_backoff_ * 2));
}

void JobWorker::NoteDbOk() {
  if (db_down_) SLUICE_LOG_INFO("job queue: PostgreSQL answers again");
  db_down_ = false;
  error_backoff_ = std::chrono::milliseconds(0);
}

void JobWorker::Run() {
  SLUICE_LOG_INFO("worker {} started: {} jobs per claim, lease {} ms", options_.worker_id,
                  options_.batch_jobs, options_.lease.count());
  auto next_reclaim = std::chrono::steady_clock::now();
  auto next_cleanup = std::chrono::steady_clock::now();
  while (!stopping()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_reclaim) {
      next_reclaim = now + options_.reclaim_interval;
      StatusOr<int64_t> n = ReclaimExpired();
      if (n.ok() && *n > 0) SLUICE_LOG_INFO("reclaimed {} jobs whose lease expired", *n);
    }
    if (options_.retention.count() > 0 && now >= next_cleanup) {
      next_cleanup = now + options_.cleanup_interval;
      StatusOr<int64_t> n = CleanupCompleted();
      if (n.ok() && *n > 0) SLUICE_LOG_INFO("deleted {} finished jobs past retention", *n);
    }
    StatusOr<int> claimed = RunOnce();
    if (!claimed.ok()) {
      NoteDbError(claimed.status(), "claim");
      SleepFor(error_backoff_);
      continue;
    }
    NoteDbOk();
    if (*claimed == 0) WaitForWork();
  }
  JobWorkerStats s = stats();
  SLUICE_LOG_INFO("worker {} stopped: {} jobs completed, {} lost, {} failed", options_.worker_id,
                  s.completed, s.lost, s.failed);
}

StatusOr<int64_t> JobWorker::ReclaimExpired() {
  StatusOr<int64_t> n = queue_->ReclaimExpired();
  if (!n.ok()) {
    db_errors_.fetch_add(1);
    return n.status();
  }
  reclaimed_.fetch_add(*n);
  return n;
}

StatusOr<int64_t> JobWorker::CleanupCompleted() {
  StatusOr<int64_t> n = queue_->CleanupCompleted(options_.retention);
  if (!n.ok()) {
    db_errors_.fetch_add(1);
    return n.status();
  }
  cleaned_.fetch_add(*n);
  return n;
}

StatusOr<int> JobWorker::RunOnce() {
  SLUICE_ASSIGN_OR_RETURN(
      std::vector<ClaimedJob> jobs,
      queue_->Claim(options_.worker_id, options_.batch_jobs, options_.lease, options_.models));
  if (jobs.empty()) return 0;
  const int count = static_cast<int>(jobs.size());
  batches_.fetch_add(1);
  claimed_.fetch_add(count);
  Batch batch;
  Submit(batch, std::move(jobs));
  Await(batch);
  Finish(batch);
  return count;
}

void JobWorker::FailJob(const ClaimedJob& job, const Status& error) {
  // Errors that a retry cannot fix fail the job at once.
  bool permanent = error.code() == StatusCode::kInvalidArgument ||
                   error.code() == StatusCode::kTooLarge || error.code() == StatusCode::kNotFound;
  failed_.fetch_add(1);
  StatusOr<FailOutcome> outcome = queue_->Fail(job.id, job.attempt, error.message(), permanent);
  if (!outcome.ok()) {
    // The lease runs out and ReclaimExpired retries the job: nothing is lost.
    db_errors_.fetch_add(1);
    SLUICE_LOG_WARN("job {}: could not record failure ({}): {}", job.id,
                    outcome.status().ToString(), error.ToString());
    return;
  }
  if (*outcome == FailOutcome::kDead) {
    SLUICE_LOG_WARN("job {} is dead after {} attempts: {}", job.id, job.attempt, error.message());
  }
}

void JobWorker::Submit(Batch& batch, std::vector<ClaimedJob> jobs) {
  EncodeOptions encode;
  encode.add_special_tokens = true;
  if (options_.truncate) {
    encode.max_length = options_.max_input_length;
  } else {
    encode.limit = options_.max_input_length;
  }
  std::vector<std::vector<Encoding>> encodings;
  batch.entries.reserve(jobs.size());
  for (ClaimedJob& job : jobs) {
    // Claim returns only the served models' jobs; should another one come through anyway,
    // failing it beats computing it with the wrong model.
    if (std::find(options_.models.begin(), options_.models.end(), job.model) ==
        options_.models.end()) {
      FailJob(job, NotFound("model '" + job.model + "' is not served by this worker"));
      continue;
    }
    std::vector<Encoding> sequences;
    sequences.reserve(job.inputs.size());
    Status bad;
    for (size_t i = 0; i < job.inputs.size() && bad.ok(); ++i) {
      StatusOr<Encoding> e = tokenizer_->Encode(job.inputs[i], encode);
      if (e.ok()) {
        sequences.push_back(std::move(e).value());
      } else {
        bad = e.status().WithContext("input[" + std::to_string(i) + "]");
      }
    }
    if (!bad.ok()) {
      FailJob(job, bad);
      continue;
    }
    batch.entries.push_back(Batch::Entry{std::move(job)});
    encodings.push_back(std::move(sequences));
  }
  {
    std::lock_guard<std::mutex> lock(batch.mu);
    batch.remaining = batch.entries.size();
  }
  // Submitted only once `entries` stops growing: the callbacks hold pointers into it.
  for (size_t i = 0; i < batch.entries.size(); ++i) {
    Batch::Entry* entry = &batch.entries[i];
    EmbedTask task;
    task.sequences = std::move(encodings[i]);
    task.normalize = options_.normalize;
    task.cancelled = entry->cancelled;
    task.done = [&batch, entry](StatusOr<std::vector<float>> vectors) {
      std::lock_guard<std::mutex> lock(batch.mu);
      entry->result = std::move(vectors);
      if (--batch.remaining == 0) batch.done_cv.notify_all();
    };
    batcher_->Submit(std::move(task));
  }
}

void JobWorker::Await(Batch& batch) {
  std::unique_lock<std::mutex> lock(batch.mu);
  while (!batch.done_cv.wait_for(lock, options_.heartbeat_interval,
                                 [&batch] { return batch.remaining == 0; })) {
    std::vector<int64_t> ids;
    for (const Batch::Entry& e : batch.entries) {
      if (!e.cancelled->load()) ids.push_back(e.job.id);
    }
    lock.unlock();
    StatusOr<std::vector<int64_t>> held =
        queue_->Heartbeat(options_.worker_id, ids, options_.lease);
    if (held.ok()) {
      std::unordered_set<int64_t> still(held->begin(), held->end());
      for (Batch::Entry& e : batch.entries) {
        if (!still.contains(e.job.id) && !e.cancelled->exchange(true)) {
          SLUICE_LOG_INFO("job {}: lease lost (cancelled or reclaimed), dropping it", e.job.id);
        }
      }
    } else {
      // Keep computing: the completion guard decides whether the work still counts.
      db_errors_.fetch_add(1);
      SLUICE_LOG_WARN("heartbeat failed: {}", held.status().ToString());
    }
    lock.lock();
  }
}

void JobWorker::Finish(Batch& batch) {
  const size_t dim = static_cast<size_t>(batcher_->embedding_dim());
  std::vector<PgJobQueue::Completion> completions;
  for (Batch::Entry& e : batch.entries) {
    if (e.cancelled->load()) {
      lost_.fetch_add(1);
      continue;
    }
    if (!e.result.ok()) {
      FailJob(e.job, e.result.status());
      continue;
    }
    PgJobQueue::Completion c;
    c.id = e.job.id;
    c.attempt = e.job.attempt;
    const std::vector<float>& flat = *e.result;
    c.result.reserve(e.job.inputs.size());
    for (size_t r = 0; r < e.job.inputs.size(); ++r) {
      c.result.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(r * dim),
                            flat.begin() + static_cast<std::ptrdiff_t>((r + 1) * dim));
    }
    completions.push_back(std::move(c));
  }
  if (completions.empty()) return;
  // The results are worth keeping while the leases last: retry through a PostgreSQL restart.
  // Past that another worker recomputes the jobs, and the guard rejects a late completion.
  auto give_up = std::chrono::steady_clock::now() + options_.lease;
  std::chrono::milliseconds backoff{100};
  while (true) {
    StatusOr<std::vector<bool>> won = queue_->CompleteMany(completions);
    if (won.ok()) {
      for (bool w : *won) (w ? completed_ : lost_).fetch_add(1);
      return;
    }
    db_errors_.fetch_add(1);
    if (std::chrono::steady_clock::now() + backoff >= give_up) {
      SLUICE_LOG_WARN("could not complete {} jobs, leaving them to be reclaimed: {}",
                      completions.size(), won.status().ToString());
      return;
    }
    SLUICE_LOG_WARN("completing {} jobs failed, retrying: {}", completions.size(),
                    won.status().ToString());
    // Not interrupted by Stop(): finished work is worth the wait.
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace sluice
