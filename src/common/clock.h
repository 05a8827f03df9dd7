// Clock: the seam through which sluice reads time, so that tests can drive TTLs, deadlines and
// timeouts without sleeping. Now() is monotonic (intervals, expiry); SystemNow() is wall time
// (timestamps shown to people or stored in PostgreSQL).
// Thread-safety: every Clock is safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>

namespace sluice {

class Clock {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;
  using SystemTimePoint = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;

  // Monotonic time: never goes backwards; use it for every interval and expiry.
  virtual TimePoint Now() const = 0;
  // Wall-clock time: may jump; use it only for timestamps.
  virtual SystemTimePoint SystemNow() const = 0;

  // The process-wide real clock (steady_clock and system_clock). Never null, never destroyed.
  static const Clock* Real();
};

// The real clock. Stateless; Clock::Real() returns a shared instance.
class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  SystemTimePoint SystemNow() const override { return std::chrono::system_clock::now(); }
};

// A clock that moves only when told to. Both readings start at the given points (by default
// the epoch of each clock plus one hour, so that `Now() - ttl` stays representable) and
// advance together. Advance() and Set*() may race with readers on other threads.
class ManualClock final : public Clock {
 public:
  ManualClock();
  ManualClock(TimePoint now, SystemTimePoint system_now);

  TimePoint Now() const override;
  SystemTimePoint SystemNow() const override;

  // Moves both readings forward by `d`. REQUIRES: d >= 0 (a monotonic clock never goes back).
  void Advance(Duration d);
  // Sets the monotonic reading. REQUIRES: t >= Now().
  void SetNow(TimePoint t);
  // Sets the wall reading; wall time may jump either way.
  void SetSystemNow(SystemTimePoint t);

 private:
  // Nanosecond ticks since each clock's epoch; atomics keep readers lock-free.
  std::atomic<int64_t> now_ns_;
  std::atomic<int64_t> system_now_ns_;
};

}  // namespace sluice
