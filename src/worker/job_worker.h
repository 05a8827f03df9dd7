// JobWorker: drains the PostgreSQL job queue (sluice.jobs) through the same DynamicBatcher the
// server uses. Each pass claims up to `batch_jobs` jobs in one statement, tokenizes and computes
// them with no transaction open, renews their leases while the batch runs, and completes them
// all in one pipelined round trip guarded by (id, attempt). Idle workers sleep on LISTEN
// sluice_jobs with polling as the fallback; the worker also reclaims expired leases and deletes
// old completed jobs. Any number of workers may share one database.
// Thread-safety: Run()/RunOnce() on one thread; Stop() and stats() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "pg/pg_job_queue.h"
#include "pg/pg_listener.h"
#include "scheduler/dynamic_batcher.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

struct JobWorkerOptions {
  // Stored in sluice.jobs.worker_id; unique per process (host:pid:random by default).
  std::string worker_id;
  // Model names this worker computes; it claims only jobs for these (others stay pending).
  std::vector<std::string> models;
  // Jobs per Claim: one batcher batch's worth.
  int batch_jobs = 64;
  std::chrono::milliseconds lease{60000};
  // How often leases are renewed while a batch computes (0: lease / 3).
  std::chrono::milliseconds heartbeat_interval{0};
  // Longest sleep between claims when no NOTIFY arrives (the polling fallback).
  std::chrono::milliseconds poll_interval{2000};
  std::chrono::milliseconds reclaim_interval{10000};
  std::chrono::milliseconds cleanup_interval{300000};
  // Completed and cancelled jobs older than this are deleted (0: never).
  std::chrono::seconds retention{86400};
  // Tokens per input, special tokens included; longer inputs are cut (truncate) or the job
  // fails permanently.
  size_t max_input_length = 512;
  bool truncate = true;
  bool normalize = true;
  // Backoff after a database error, doubling from 100 ms up to this.
  std::chrono::milliseconds max_error_backoff{5000};
};

struct JobWorkerStats {
  int64_t batches = 0;    // claims that returned at least one job
  int64_t claimed = 0;    // jobs claimed
  int64_t completed = 0;  // completions that won their guard
  int64_t lost = 0;       // completions that lost (reclaimed or cancelled meanwhile)
  int64_t failed = 0;     // jobs handed to Fail (retry, dead or failed)
  int64_t reclaimed = 0;  // expired leases put back by this worker
  int64_t cleaned = 0;    // old jobs deleted by this worker
  int64_t db_errors = 0;  // queue calls that failed
};

class JobWorker {
 public:
  // `queue`, `tokenizer` and `batcher` must outlive the worker; `listener` may be null (then
  // the worker only polls).
  static StatusOr<std::unique_ptr<JobWorker>> Create(JobWorkerOptions options, PgJobQueue* queue,
                                                     PgListener* listener,
                                                     const Tokenizer* tokenizer,
                                                     DynamicBatcher* batcher);

  // Claims and computes until Stop(); the batch in progress is finished and completed first.
  void Run();
  // One pass: claim, compute, complete. Returns the number of jobs claimed; an error only when
  // the claim itself failed (later failures are recorded on the jobs and in stats()).
  StatusOr<int> RunOnce();
  // Housekeeping that Run() schedules by itself: returns the jobs reclaimed / deleted.
  StatusOr<int64_t> ReclaimExpired();
  StatusOr<int64_t> CleanupCompleted();

  void Stop();
  bool stopping() const { return stop_.load(); }
  JobWorkerStats stats() const;
  const JobWorkerOptions& options() const { return options_; }

 private:
  struct Batch;

  JobWorker(JobWorkerOptions options, PgJobQueue* queue, PgListener* listener,
            const Tokenizer* tokenizer, DynamicBatcher* batcher);

  // Submits every claimed job that can run; fails the others at once.
  void Submit(Batch& batch, std::vector<ClaimedJob> jobs);
  // Waits for the batch, renewing leases; jobs that lost their lease are cancelled.
  void Await(Batch& batch);
  // Completes the successful jobs and fails the broken ones.
  void Finish(Batch& batch);
  void FailJob(const ClaimedJob& job, const Status& error);
  // Sleeps up to `d`, waking early on Stop().
  void SleepFor(std::chrono::milliseconds d);
  // Waits for a NOTIFY (or polls), waking early on Stop().
  void WaitForWork();
  void NoteDbError(const Status& status, const char* what);
  void NoteDbOk();

  const JobWorkerOptions options_;
  PgJobQueue* const queue_;
  PgListener* const listener_;
  const Tokenizer* const tokenizer_;
  DynamicBatcher* const batcher_;

  std::atomic<bool> stop_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;

  bool db_down_ = false;  // owned by the Run() thread: log state changes once
  std::chrono::milliseconds error_backoff_{0};

  std::atomic<int64_t> batches_{0}, claimed_{0}, completed_{0}, lost_{0}, failed_{0}, reclaimed_{0},
      cleaned_{0}, db_errors_{0};
};

}  // namespace sluice
