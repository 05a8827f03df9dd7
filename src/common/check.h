// SLUICE_CHECK: aborts loudly when an invariant of the program is broken. Never used for bad
// input, which returns a Status instead.
#pragma once

#include <sstream>

namespace sluice::internal {

// Collects a failure message and aborts the process in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Makes `cond ? (void)0 : CheckFailure(...).stream() << ...` well-typed.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace sluice::internal

#define SLUICE_CHECK(cond)                 \
  (cond) ? static_cast<void>(0)            \
         : ::sluice::internal::Voidify() & \
               ::sluice::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()
