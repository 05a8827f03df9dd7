// ThreadPool: a fixed set of worker threads that run data-parallel loops (ParallelFor) with the
// calling thread taking part. Built for compute kernels: one loop at a time, no allocation per
// loop, no task queue.
//
// Thread-safety: ParallelFor may be called by one thread at a time (the pool's owner); it is not
// reentrant (a body must not call ParallelFor on the same pool). The destructor stops and joins
// every worker.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace sluice {

class ThreadPool {
 public:
  // `num_threads` counts the caller: ThreadPool(1) starts no worker and runs loops inline.
  // 0 means one thread per hardware core.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that take part in a loop, the caller included.
  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls body(begin, end) over disjoint blocks covering [0, n); blocks hold `grain` indices
  // (the last may hold fewer) and are claimed dynamically, so uneven blocks balance. Returns when
  // every block has run. `body` must not throw.
  template <typename Body>
  void ParallelFor(size_t n, size_t grain, const Body& body) {
    static_assert(std::is_invocable_v<const Body&, size_t, size_t>);
    Run(n, grain, &body, [](const void* ctx, int, size_t begin, size_t end) {
      (*static_cast<const Body*>(ctx))(begin, end);
    });
  }

  // As ParallelFor, calling body(thread, begin, end) where `thread` in [0, num_threads()) names
  // the thread running the block (0 is the caller), for per-thread scratch space.
  template <typename Body>
  void ParallelForWithThread(size_t n, size_t grain, const Body& body) {
    static_assert(std::is_invocable_v<const Body&, int, size_t, size_t>);
    Run(n, grain, &body, [](const void* ctx, int thread, size_t begin, size_t end) {
      (*static_cast<const Body*>(ctx))(thread, begin, end);
    });
  }

  // The number of hardware threads (at least 1).
  static int HardwareThreads();

 private:
  using Trampoline = void (*)(const void* ctx, int thread, size_t begin, size_t end);

  void Run(size_t n, size_t grain, const void* ctx, Trampoline fn);
  void WorkerLoop(std::stop_token stop, int thread);
  // Claims and runs blocks of the current loop on `thread` until none is left.
  void Drain(int thread);

  // The current loop, published under mu_ with a new generation_.
  const void* ctx_ = nullptr;
  Trampoline fn_ = nullptr;
  size_t n_ = 0;
  size_t grain_ = 1;
  std::atomic<size_t> next_{0};

  std::mutex mu_;
  std::condition_variable_any wake_;  // workers wait here for a new generation_
  std::condition_variable done_cv_;   // the caller waits here for running_ == 0
  uint64_t generation_ = 0;           // GUARDED_BY(mu_)
  // The newest generation_, for workers polling before they sleep; and the workers that have
  // not yet finished draining it (the caller polls, then sleeps on done_cv_, until it is 0).
  std::atomic<uint64_t> published_{0};
  std::atomic<int> running_{0};

  std::vector<std::jthread> workers_;  // last member: stopped and joined first
};

}  // namespace sluice
