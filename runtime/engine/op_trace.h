// SILK_TRACE: every operation a communicator ran, as a Chrome/Perfetto trace
// (chrome://tracing, ui.perfetto.dev) written by each rank when its
// communicator closes. One complete event ("ph": "X") per operation on a track
// per engine stream (point-to-point on their own track): its call, the
// algorithm the collective layer noted, bytes sent and received, the result;
// and nested in it one event per tier its messages used (node, region, WAN):
// from the first message posted to the last completed, with the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace silk {

struct TracePhase {
  std::string tier;  // "node", "region", "WAN"
  absl::Time start, end;
  uint64_t bytes_sent = 0, bytes_received = 0;
};

struct TraceEvent {
  std::string name;      // "allreduce"
  std::string category;  // "collective" or "point-to-point"
  std::string call;      // OpDescriptor::ToString()
  std::string note;      // the plan, as OpContext::Annotate recorded it
  uint64_t op_id = 0;
  int track = 0;
  absl::Time start, end;
  uint64_t bytes_sent = 0, bytes_received = 0;
  std::string result;  // "ok" or the error
  std::vector<TracePhase> phases;
};

class OpTrace {
 public:
  // `path`: SILK_TRACE; "%r" in it becomes the rank, else ".rank<r>.json" is appended.
  OpTrace(std::string path, int rank);
  // Keeps the first kMaxEvents (a trace is for looking at, not for a week-long job).
  void Record(TraceEvent event);
  // Writes the file; returns why not.
  absl::Status Write() const;
  const std::string& path() const { return path_; }

  static constexpr size_t kMaxEvents = 1 << 20;

 private:
  const std::string path_;
  const int rank_;
  const absl::Time origin_;
  mutable absl::Mutex mu_;
  std::vector<TraceEvent> events_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace silk
