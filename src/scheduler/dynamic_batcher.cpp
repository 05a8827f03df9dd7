#include "scheduler/dynamic_batcher.h"

#include <algorithm>
#include <deque>
#include <string>
#include <utility>

#include "common/logging.h"

namespace sluice {

struct DynamicBatcher::Replica {
  size_t index = 0;
  Backend* backend = nullptr;
  size_t capacity = 0;                            // batches it may hold (queued + running)
  std::condition_variable cv;                     // a batch queued, or stopping
  std::deque<std::vector<QueuedSequence>> inbox;  // GUARDED_BY(mu_)
  size_t batches = 0;                             // GUARDED_BY(mu_): queued + running
  size_t tokens = 0;                              // GUARDED_BY(mu_): queued + running
  std::thread thread;
};

StatusOr<std::unique_ptr<DynamicBatcher>> DynamicBatcher::Create(DynamicBatcherOptions options,
                                                                 std::vector<Backend*> replicas) {
  if (replicas.empty()) return InvalidArgument("the batcher needs at least one engine replica");
  if (options.policy.max_batch_requests == 0 || options.policy.max_batch_tokens == 0) {
    return InvalidArgument("max_batch_requests and max_batch_tokens must be positive");
  }
  if (options.policy.max_queue_delay.count() < 0) {
    return InvalidArgument("max_queue_delay must not be negative");
  }
  if (options.max_batches_per_replica == 0) {
    return InvalidArgument("max_batches_per_replica must be positive");
  }
  int dim = replicas[0]->embedding_dim();
  for (Backend* b : replicas) {
    if (b == nullptr) return InvalidArgument("null engine replica");
    if (b->embedding_dim() != dim) {
      return InvalidArgument("engine replicas disagree on the embedding dimension");
    }
  }
  return std::unique_ptr<DynamicBatcher>(
      new DynamicBatcher(std::move(options), std::move(replicas), dim));
}

DynamicBatcher::DynamicBatcher(DynamicBatcherOptions options, std::vector<Backend*> backends,
                               int dim)
    : options_(std::move(options)), dim_(dim), queue_(options_.policy) {
  for (size_t i = 0; i < backends.size(); ++i) {
    auto r = std::make_unique<Replica>();
    r->index = i;
    r->backend = backends[i];
    const size_t in_flight = static_cast<size_t>(std::max(1, backends[i]->max_in_flight()));
    r->capacity = options_.max_batches_per_replica + in_flight - 1;
    replicas_.push_back(std::move(r));
  }
  for (auto& r : replicas_) {
    Replica* replica = r.get();
    replica->thread = std::thread([this, replica] { ReplicaLoop(replica); });
  }
  batcher_thread_ = std::thread([this] { BatcherLoop(); });
}

DynamicBatcher::~DynamicBatcher() { Stop(); }

void DynamicBatcher::Stop() {
  std::call_once(stop_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    batcher_cv_.notify_all();
    batcher_thread_.join();
    for (auto& r : replicas_) r->cv.notify_all();
    for (auto& r : replicas_) r->thread.join();
  });
}

size_t DynamicBatcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void DynamicBatcher::Submit(EmbedTask task) {
  if (task.sequences.empty()) {
    task.done(std::vector<float>());
    return;
  }
  auto state = std::make_shared<TaskState>(std::move(task), dim_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.Push(state, SteadyClock::now());
      batcher_cv_.notify_one();
      return;
    }
  }
  state->Fail(Unavailable("the server is shutting down"));
}

DynamicBatcher::Replica* DynamicBatcher::PickReplica() {
  Replica* best = nullptr;
  for (auto& r : replicas_) {
    if (r->batches >= r->capacity) continue;
    if (best == nullptr || r->batches < best->batches ||
        (r->batches == best->batches && r->tokens < best->tokens)) {
      best = r.get();
    }
  }
  return best;
}

void DynamicBatcher::BatcherLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    SteadyTime now = SteadyClock::now();
    std::vector<std::shared_ptr<TaskState>> dead = queue_.DropDead(now);
    if (!dead.empty()) {
      lock.unlock();
      for (auto& task : dead) task->Fail(task->CheckAlive(now));
      lock.lock();
      continue;
    }
    if (queue_.empty() && stopping_) break;
    Replica* replica = PickReplica();
    // While stopping, queued work is flushed without waiting for the batch to fill.
    if (replica != nullptr && (stopping_ || queue_.ShouldClose(now))) {
      std::vector<QueuedSequence> batch = queue_.TakeBatch();
      size_t tokens = 0;
      for (const QueuedSequence& s : batch) tokens += s.tokens;
      replica->batches += 1;
      replica->tokens += tokens;
      replica->inbox.push_back(std::move(batch));
      replica->cv.notify_one();
      continue;
    }
    // Sleep until new work, a freed replica slot, a batch's delay running out or a deadline.
    // With every replica full, a batch that is due cannot be placed anyway: only deadlines
    // (and the replicas' notifications) matter, or the loop would spin.
    SteadyTime wake = replica == nullptr ? queue_.NextDeadline() : queue_.NextWake();
    if (wake == SteadyTime::max()) {
      batcher_cv_.wait(lock);
    } else {
      batcher_cv_.wait_until(lock, wake);
    }
  }
  batcher_done_ = true;
}

void DynamicBatcher::ReleaseLocked(Replica* replica, size_t tokens) {
  replica->batches -= 1;
  replica->tokens -= tokens;
  batcher_cv_.notify_one();
}

void DynamicBatcher::ReplicaLoop(Replica* replica) {
  if (replica->backend->max_in_flight() > 1) {
    PipelinedReplicaLoop(replica);
    return;
  }
  Batch input;
  std::vector<float> out;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    replica->cv.wait(lock, [&] { return !replica->inbox.empty() || batcher_done_; });
    if (replica->inbox.empty()) break;  // batcher_done_ and nothing left
    std::vector<QueuedSequence> batch = std::move(replica->inbox.front());
    replica->inbox.pop_front();
    lock.unlock();
    Running running = Prepare(replica, std::move(batch), &input);
    const size_t tokens = running.tokens;
    if (!running.live.empty()) {
      Status status = replica->backend->Embed(input, &out);
      running.stats.inference = SteadyClock::now() - running.start;
      Finish(replica, std::move(running), status, out);
    }
    lock.lock();
    ReleaseLocked(replica, tokens);
  }
}

void DynamicBatcher::PipelinedReplicaLoop(Replica* replica) {
  const size_t depth = static_cast<size_t>(replica->backend->max_in_flight());
  std::deque<Running> submitted;  // oldest first: tickets are collected in submission order
  Batch input;
  std::vector<float> out;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (submitted.size() < depth && !replica->inbox.empty()) {
      // A free device slot and a batch waiting: submit it before collecting anything, so the
      // device has the next batch queued when the current one ends.
      std::vector<QueuedSequence> batch = std::move(replica->inbox.front());
      replica->inbox.pop_front();
      lock.unlock();
      Running running = Prepare(replica, std::move(batch), &input);
      const size_t tokens = running.tokens;
      bool placed = false;
      if (!running.live.empty()) {
        StatusOr<uint64_t> ticket = replica->backend->Submit(input);
        if (ticket.ok()) {
          running.ticket = *ticket;
          submitted.push_back(std::move(running));
          placed = true;
        } else {
          Finish(replica, std::move(running), ticket.status(), out);
        }
      }
      lock.lock();
      if (!placed) ReleaseLocked(replica, tokens);
      continue;
    }
    if (!submitted.empty()) {
      lock.unlock();
      Running running = std::move(submitted.front());
      submitted.pop_front();
      const size_t tokens = running.tokens;
      Status status = replica->backend->Collect(running.ticket, &out);
      running.stats.inference = SteadyClock::now() - running.start;
      Finish(replica, std::move(running), status, out);
      lock.lock();
      ReleaseLocked(replica, tokens);
      continue;
    }
    if (batcher_done_ && replica->inbox.empty()) break;
    replica->cv.wait(lock, [&] { return !replica->inbox.empty() || batcher_done_; });
  }
}

DynamicBatcher::Running DynamicBatcher::Prepare(Replica* replica, std::vector<QueuedSequence> batch,
                                                Batch* input) {
  Running running;
  for (const QueuedSequence& s : batch) running.tokens += s.tokens;
  // A last check before compute: clients that left or ran out of time while the batch waited
  // for this replica are answered now and cost nothing.
  SteadyTime now = SteadyClock::now();
  running.live.reserve(batch.size());
  for (QueuedSequence& s : batch) {
    if (s.task->finished()) continue;
    Status alive = s.task->CheckAlive(now);
    if (!alive.ok()) {
      s.task->Fail(alive);
      continue;
    }
    running.live.push_back(std::move(s));
  }
  input->Clear();
  BatchStats& stats = running.stats;
  stats.replica = replica->index;
  stats.queue_waits.reserve(running.live.size());
  for (const QueuedSequence& s : running.live) {
    const Encoding& e = s.task->sequence(s.index);
    input->Add(e.ids, e.type_ids, s.task->normalize());
    stats.queue_waits.push_back(now - s.enqueued);
    stats.max_queue_wait = std::max(stats.max_queue_wait, stats.queue_waits.back());
  }
  stats.sequences = input->num_sequences();
  stats.tokens = input->num_tokens();
  running.start = SteadyClock::now();
  return running;
}

void DynamicBatcher::Finish(Replica* replica, Running running, Status status,
                            const std::vector<float>& out) {
  std::vector<QueuedSequence>& live = running.live;
  if (status.ok() && out.size() != live.size() * static_cast<size_t>(dim_)) {
    status = Internal("the backend returned " + std::to_string(out.size()) + " floats for " +
                      std::to_string(live.size()) + " sequences");
  }
  if (!status.ok()) {
    SLUICE_LOG_ERROR("replica {} ({}): batch of {} sequences failed: {}", replica->index,
                     replica->backend->name(), live.size(), status.ToString());
    for (QueuedSequence& s : live) s.task->Fail(status);
    return;
  }
  // Counted before any answer goes out, so that a client that sees its answer also sees its
  // batch in the metrics.
  if (options_.on_batch) options_.on_batch(running.stats);
  for (size_t i = 0; i < live.size(); ++i) {
    live[i].task->Complete(live[i].index, out.data() + i * static_cast<size_t>(dim_));
  }
}

}  // namespace sluice
