// The rate a WAN link carries, estimated from what Silk's own operations move
// across it, as BBR estimates a flow's bottleneck from its delivery rate. The
// region-aware all-reduce reports, after each large operation, the bytes it
// moved across regions and how long the exchange took; the estimate is the
// largest such sample of the last `window` (counted back from the newest
// sample), so one slow operation (a busy CPU, a retransmission, a late region)
// does not pull the pace down, and a link that got slower is followed once the
// faster samples have aged out.
//
// The pace is `headroom` times the estimate: a cap on the bursts at each
// operation's start (every lane of every rank at once), not a target. A
// pace at the estimate itself binds whenever the sender is bursty (a busy
// CPU hands the lanes data in spurts, and time lost below the pace is never
// made up): on the loaded virtual cluster that cost 10-20 % against no pace
// at all. The headroom also lets each operation find up to that much more if
// the link got faster, and while samples keep growing (one above the estimate
// by more than `growth`) the pace is `startup_gain` times the estimate, as
// BBR's start-up does, so a link several times faster is reached in a few
// operations.
//
// Pure logic: the caller passes the time, so tests drive it on a simulated
// clock. Thread-safe (operations that overlap may report at once).
#pragma once

#include <deque>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace silk {

class RateEstimator {
 public:
  struct Options {
    absl::Duration window = absl::Seconds(2);
    double headroom = 1.5;
    double startup_gain = 2.5;
    double growth = 1.1;
  };
  RateEstimator() : RateEstimator(Options{}) {}
  explicit RateEstimator(Options options) : options_(options) {}

  // `bytes` crossed the link in `elapsed`, ending at `now`. Ignored unless both are positive.
  void AddSample(absl::Time now, double bytes, absl::Duration elapsed);
  // Bytes per second: the largest sample of the window; 0 before any sample.
  double Estimate() const;
  // The pace for the next operation: the estimate times `headroom`, or times
  // `startup_gain` while growing; 0 before any sample.
  double Pace() const;

 private:
  struct Sample {
    absl::Time at;
    double bytes_per_s;
  };
  const Options options_;
  mutable absl::Mutex mu_;
  // Decreasing rates, increasing times: the front is the window's largest.
  std::deque<Sample> samples_ ABSL_GUARDED_BY(mu_);
  bool growing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace silk
