// A Chrome trace recorder (the JSON "traceEvents" format read by
// chrome://tracing and Perfetto): complete events ("ph":"X") on named tracks.
// Thread-safe: compute spans come from the training thread, communication
// spans from the engine's completion callbacks.
#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace silk::training {

class TraceRecorder {
 public:
  // `pid` is shown as the process (use the rank); times are relative to `origin`.
  TraceRecorder(int pid, absl::Time origin) : pid_(pid), origin_(origin) {}

  // One span on track `track` (e.g. "compute", "exchange").
  void Span(const std::string& track, const std::string& name, absl::Time start, absl::Time end);
  // Writes {"traceEvents":[...]} to `path`.
  absl::Status Write(const std::string& path) const;
  size_t size() const;

 private:
  struct Event {
    int tid;
    std::string name;
    double start_us, duration_us;
  };
  const int pid_;
  const absl::Time origin_;
  mutable absl::Mutex mu_;
  std::vector<std::string> tracks_ ABSL_GUARDED_BY(mu_);
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

}  // namespace silk::training
