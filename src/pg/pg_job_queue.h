// PgJobQueue: the durable job queue in sluice.jobs. Producers Enqueue (or INSERT in plain SQL);
// workers Claim a batch, compute with no transaction open, then Complete or Fail it. Every
// state change is one short autocommit statement, and Complete/Fail are guarded by
// (id, attempt, status = 'processing') so a worker whose lease expired cannot overwrite a later
// attempt. Claim order: higher priority first, then FIFO by id; a worker claims only the
// models it serves.
// Thread-safety: all methods are safe to call from any thread (each borrows a pool connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pg/pg_pool.h"

namespace sluice {

enum class JobStatus { kPending, kProcessing, kCompleted, kFailed, kDead, kCancelled };

// The status's name as stored in sluice.jobs.status ("pending").
std::string_view JobStatusName(JobStatus status);
StatusOr<JobStatus> ParseJobStatus(std::string_view name);

// A job as a worker sees it after Claim.
struct ClaimedJob {
  int64_t id = 0;
  std::string model;
  std::vector<std::string> inputs;
  int32_t priority = 0;
  int32_t attempt = 0;  // 1 on the first claim; pass it back to Complete/Fail
  int32_t max_attempts = 0;
  std::chrono::system_clock::time_point lease_expires_at;
};

// A job's full row, as Get returns it.
struct JobRecord {
  int64_t id = 0;
  std::string model;
  std::vector<std::string> inputs;
  JobStatus status = JobStatus::kPending;
  int32_t priority = 0;
  int32_t attempt = 0;
  int32_t max_attempts = 0;
  std::optional<std::string> worker_id;
  std::optional<std::string> error;
  std::vector<std::vector<float>> result;  // one vector per input once completed
  std::chrono::system_clock::time_point run_after;
  std::optional<std::chrono::system_clock::time_point> lease_expires_at;
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point updated_at;
  std::optional<std::chrono::system_clock::time_point> completed_at;
};

enum class FailOutcome {
  kRetry,   // back to pending, runs again after the backoff
  kDead,    // attempts exhausted: 'dead', error kept
  kFailed,  // a permanent failure: 'failed' without retry
  kLost,    // the guard did not match: another attempt owns the job, or it was cancelled
};

struct PgJobQueueOptions {
  // Retry delay after attempt k: min(backoff_max, backoff_base * 2^(k-1)), scaled by a random
  // factor in [0.5, 1) so that a burst of failures does not retry in lockstep.
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_max{300000};
  // Upper bounds checked on Enqueue.
  size_t max_inputs = 10000;
  size_t max_input_bytes = 1 << 20;
};

class PgJobQueue {
 public:
  // Checks the schema version (CheckSchema) on one connection of `pool`.
  static StatusOr<std::unique_ptr<PgJobQueue>> Create(std::shared_ptr<PgPool> pool,
                                                      PgJobQueueOptions options = {});

  // Adds a pending job and returns its id; the insert trigger NOTIFYs sluice_jobs.
  StatusOr<int64_t> Enqueue(std::string_view model, std::span<const std::string> inputs,
                            int32_t priority = 0, int32_t max_attempts = 3);
  // NotFound for an unknown id.
  StatusOr<JobRecord> Get(int64_t id);
  // Cancels a pending or processing job (a worker still computing it then loses its Complete).
  // NotFound for an unknown id; FailedPrecondition when it already finished.
  Status Cancel(int64_t id);

  // Claims up to `n` runnable jobs for `worker_id` with a lease of `lease`; never more than n.
  // With `models`, only jobs whose model is one of them (others stay pending, unlocked);
  // empty: any model. Returned in claim order. Jobs whose input is not an array of strings
  // cannot be inserted.
  StatusOr<std::vector<ClaimedJob>> Claim(std::string_view worker_id, int n,
                                          std::chrono::milliseconds lease,
                                          std::span<const std::string> models = {});
  // Extends the leases of `ids` held by `worker_id`; returns the ids still held (a job
  // cancelled or reclaimed meanwhile is missing: stop working on it).
  StatusOr<std::vector<int64_t>> Heartbeat(std::string_view worker_id, std::span<const int64_t> ids,
                                           std::chrono::milliseconds lease);
  // Stores the result of attempt `attempt`; false when the guard lost (stale attempt,
  // cancelled, or already finished). InvalidArgument for vectors of unequal or zero size.
  StatusOr<bool> Complete(int64_t id, int32_t attempt,
                          const std::vector<std::vector<float>>& result);
  // Complete for a whole batch in one round trip (pipelined); won[i] answers completions[i].
  // Each row keeps its own guard: a lost one does not stop the others.
  struct Completion {
    int64_t id = 0;
    int32_t attempt = 0;
    std::vector<std::vector<float>> result;
  };
  StatusOr<std::vector<bool>> CompleteMany(std::span<const Completion> completions);
  // Records a failed attempt: retried with backoff, or 'dead' after max_attempts, or 'failed'
  // at once when `permanent` (retrying cannot help, e.g. an input over the model's limit).
  StatusOr<FailOutcome> Fail(int64_t id, int32_t attempt, std::string_view error,
                             bool permanent = false);
  // Puts jobs whose lease expired back to pending (or 'dead' when that was their last
  // attempt); returns how many. Any process may run it periodically.
  StatusOr<int64_t> ReclaimExpired();
  // Deletes completed and cancelled jobs finished more than `retention` ago; returns how many.
  // Dead and failed jobs stay for inspection until deleted by hand.
  StatusOr<int64_t> CleanupCompleted(std::chrono::seconds retention);

 private:
  PgJobQueue(std::shared_ptr<PgPool> pool, PgJobQueueOptions options)
      : pool_(std::move(pool)), options_(options) {}

  std::shared_ptr<PgPool> pool_;
  const PgJobQueueOptions options_;
};

}  // namespace sluice
