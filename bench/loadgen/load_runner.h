// LoadRunner: drives HTTP/1.1 keep-alive load at a loopback target and measures it.
//
// Open loop (rate > 0): each thread owns rate/threads of the schedule; request i of a thread
// is due at start + offset + i/rate_per_thread, whatever happened to earlier requests. A due
// request goes out on an idle connection of its thread or waits in that thread's queue, and
// its latency runs from the time it was due, not from when a connection freed up, so a
// stalled server shows up as the latency every waiting request sees (no coordinated
// omission). Closed loop: every connection sends its next request as soon as the previous
// response arrives, which measures maximum throughput.
//
// Requests due during the warm-up are sent but not recorded. When the window ends the run
// waits up to the request timeout for responses still outstanding; requests still queued then
// are reported as "unsent".
// Thread-safety: Run() may be called from any thread; it starts and joins its own threads.
#pragma once

#include "common/status.h"
#include "load_report.h"
#include "loadgen_options.h"

namespace sluice::loadgen {

class LoadRunner {
 public:
  // InvalidArgument when `options` do not pass ValidateOptions; Unavailable when the target
  // cannot be resolved. Failures during the run (refused connections, timeouts, error
  // statuses) are counted in the report, not returned.
  static StatusOr<LoadReport> Run(const LoadgenOptions& options);
};

}  // namespace sluice::loadgen
