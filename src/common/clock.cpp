#include "common/clock.h"

#include "common/check.h"

namespace sluice {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;

constexpr std::chrono::hours kDefaultStart{1};

}  // namespace

const Clock* Clock::Real() {
  // Never destroyed, so it stays valid for threads that outlive static destruction.
  static const RealClock* const clock = new RealClock();
  return clock;
}

ManualClock::ManualClock()
    : ManualClock(TimePoint(kDefaultStart), SystemTimePoint(kDefaultStart)) {}

ManualClock::ManualClock(TimePoint now, SystemTimePoint system_now)
    : now_ns_(duration_cast<nanoseconds>(now.time_since_epoch()).count()),
      system_now_ns_(duration_cast<nanoseconds>(system_now.time_since_epoch()).count()) {}

Clock::TimePoint ManualClock::Now() const {
  return TimePoint(duration_cast<Duration>(nanoseconds(now_ns_.load(std::memory_order_acquire))));
}

Clock::SystemTimePoint ManualClock::SystemNow() const {
  return SystemTimePoint(duration_cast<SystemTimePoint::duration>(
      nanoseconds(system_now_ns_.load(std::memory_order_acquire))));
}

void ManualClock::Advance(Duration d) {
  SLUICE_CHECK(d >= Duration::zero()) << "ManualClock::Advance with a negative duration";
  const int64_t ns = duration_cast<nanoseconds>(d).count();
  now_ns_.fetch_add(ns, std::memory_order_acq_rel);
  system_now_ns_.fetch_add(ns, std::memory_order_acq_rel);
}

void ManualClock::SetNow(TimePoint t) {
  const int64_t ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  SLUICE_CHECK(ns >= now_ns_.load(std::memory_order_acquire))
      << "ManualClock::SetNow would move a monotonic clock backwards";
  now_ns_.store(ns, std::memory_order_release);
}

void ManualClock::SetSystemNow(SystemTimePoint t) {
  system_now_ns_.store(duration_cast<nanoseconds>(t.time_since_epoch()).count(),
                       std::memory_order_release);
}

}  // namespace sluice
