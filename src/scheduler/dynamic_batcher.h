// DynamicBatcher: gathers the sequences of concurrent requests into batches (BatchQueue rules)
// and hands each batch to the least-loaded engine replica. One thread owns the queue; each
// replica (one Backend: the CPU, or one GPU) has its own thread. A replica whose backend takes
// several batches at once (max_in_flight() > 1, the GPU) is driven through Submit/Collect, so
// the host packs and submits the next batch while the device runs the current one; others
// through Embed().
//
// Thread-safety: Submit() and the accessors may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"
#include "scheduler/batch_queue.h"
#include "scheduler/embed_task.h"

namespace sluice {

// What one executed batch looked like, for metrics.
struct BatchStats {
  size_t sequences = 0;
  size_t tokens = 0;
  std::chrono::nanoseconds max_queue_wait{0};  // of the batch's oldest sequence
  // Per sequence: from its Submit() to the start of its batch.
  std::vector<std::chrono::nanoseconds> queue_waits;
  // Backend wall time: Embed(), or from Submit() to the end of Collect().
  std::chrono::nanoseconds inference{0};
  size_t replica = 0;
};

struct DynamicBatcherOptions {
  BatchPolicy policy;
  // Batches a replica may hold (running + waiting); 2 lets the next batch be ready when the
  // current one ends while keeping the rest in the queue, where they can still grow. A
  // pipelined replica holds max_in_flight() - 1 more, the batches its device runs at once.
  size_t max_batches_per_replica = 2;
  // Called on a replica thread after each successful batch, before its tasks are answered;
  // may be empty.
  std::function<void(const BatchStats&)> on_batch;
};

class DynamicBatcher {
 public:
  // `replicas` must outlive the batcher and share one embedding_dim.
  static StatusOr<std::unique_ptr<DynamicBatcher>> Create(DynamicBatcherOptions options,
                                                          std::vector<Backend*> replicas);
  // Stop()s.
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues `task`. Its done() runs later on a batcher or replica thread, or at once when the
  // task is empty or the batcher is stopping (Unavailable).
  void Submit(EmbedTask task);

  // Refuses new tasks, computes those already queued, then joins every thread. Idempotent.
  void Stop();

  int embedding_dim() const { return dim_; }
  size_t num_replicas() const { return replicas_.size(); }
  // Sequences waiting for a batch.
  size_t queue_depth() const;

 private:
  struct Replica;

  DynamicBatcher(DynamicBatcherOptions options, std::vector<Backend*> backends, int dim);

  // One batch between the replica's inbox and its answers.
  struct Running {
    std::vector<QueuedSequence> live;  // sequences still wanted, in batch order
    BatchStats stats;
    size_t tokens = 0;  // as charged to the replica when the batch was placed
    uint64_t ticket = 0;
    SteadyTime start;
  };

  void BatcherLoop();
  void ReplicaLoop(Replica* replica);
  void PipelinedReplicaLoop(Replica* replica);
  // Answers the tasks that no longer want computing and packs the rest into `input`.
  Running Prepare(Replica* replica, std::vector<QueuedSequence> batch, Batch* input);
  // Hands a finished batch's vectors (or its failure) to its tasks.
  void Finish(Replica* replica, Running running, Status status, const std::vector<float>& out);
  // Returns a batch's charge to its replica and wakes the batcher. REQUIRES: mu_ held.
  void ReleaseLocked(Replica* replica, size_t tokens);
  // The replica with a free slot and the least queued work, or null.
  Replica* PickReplica();

  const DynamicBatcherOptions options_;
  const int dim_;

  mutable std::mutex mu_;
  std::condition_variable batcher_cv_;  // work queued, a replica slot freed, or stopping
  BatchQueue queue_;                    // GUARDED_BY(mu_)
  bool stopping_ = false;               // GUARDED_BY(mu_)
  bool batcher_done_ = false;           // GUARDED_BY(mu_): no more batches will be made
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::thread batcher_thread_;
  std::once_flag stop_once_;
};

}  // namespace sluice
