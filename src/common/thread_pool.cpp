#include "common/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace sluice {
namespace {

// How long a worker keeps polling for the next loop, and the caller for the workers to finish,
// before sleeping on a condition variable. A futex wake-up costs tens of microseconds on a VM;
// a forward pass of a short batch runs dozens of loops, each shorter than that.
constexpr std::chrono::microseconds kSpin{50};

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Polls `done` until it returns true or kSpin has passed; returns its last answer.
template <typename Done>
bool SpinUntil(const Done& done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
    CpuRelax();
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  const int total = num_threads > 0 ? num_threads : HardwareThreads();
  workers_.reserve(static_cast<size_t>(total - 1));
  for (int i = 1; i < total; ++i) {
    workers_.emplace_back([this, i](std::stop_token stop) { WorkerLoop(stop, i); });
  }
}

ThreadPool::~ThreadPool() {
  for (auto& w : workers_) w.request_stop();
  {
    // Taking the lock orders the stop request before any worker's next wait.
    std::lock_guard<std::mutex> lock(mu_);
  }
  wake_.notify_all();
  workers_.clear();  // joins
}

int ThreadPool::HardwareThreads() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void ThreadPool::Run(size_t n, size_t grain, const void* ctx, Trampoline fn) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  if (workers_.empty() || n <= grain) {
    for (size_t begin = 0; begin < n; begin += grain) fn(ctx, 0, begin, std::min(n, begin + grain));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ctx_ = ctx;
    fn_ = fn;
    n_ = n;
    grain_ = grain;
    next_.store(0, std::memory_order_relaxed);
    running_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    ++generation_;
    published_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  Drain(0);
  if (SpinUntil([this] { return running_.load(std::memory_order_acquire) == 0; })) return;
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return running_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::Drain(int thread) {
  for (;;) {
    const size_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (begin >= n_) return;
    fn_(ctx_, thread, begin, std::min(n_, begin + grain_));
  }
}

void ThreadPool::WorkerLoop(std::stop_token stop, int thread) {
  uint64_t seen = 0;
  for (;;) {
    SpinUntil([&] {
      return published_.load(std::memory_order_acquire) != seen || stop.stop_requested();
    });
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!wake_.wait(lock, stop, [&] { return generation_ != seen; })) return;
      seen = generation_;
    }
    Drain(thread);
    if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Under the lock, so the notification cannot fall between the caller's check and wait.
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

}  // namespace sluice
