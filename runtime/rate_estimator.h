// The rate a WAN link carries, estimated from what Silk's own operations move
// across it, as BBR estimates a flow's bottleneck from its delivery rate. The
// region-aware all-reduce reports how fast its exchanges crossed regions:
// during the operation, every `sample_interval` of deliveries (a DeliveryMeter,
// below), and once at its end over the whole exchange. The estimate is the
// largest sample of the last `window` (counted back from the newest sample,
// and never fewer than the last two samples), so one slow stretch (a busy
// CPU, a retransmission, a late region, a stall) does not pull the pace down,
// and a link that got slower is followed once the faster samples have aged
// out, within a long operation as between short ones.
//
// The pace is `headroom` times the estimate: a cap on bursts (every lane of
// every rank at once), not a target. A pace at the estimate itself binds
// whenever the sender is bursty (a busy CPU hands the lanes data in spurts,
// and time lost below the pace is never made up): on the loaded virtual
// cluster that cost 10-20 % against no pace at all. The headroom also lets
// each sample find up to that much more if the link got faster, and while
// samples keep growing (one above the estimate by more than `growth`) the pace
// is `startup_gain` times the estimate, as BBR's start-up does, so a link
// several times faster is reached in a few samples.
//
// A declared rate (a cluster spec's) caps the pace: a provider's contract rate
// is usually what its policer enforces, and bursts above it are lost. But a
// link may be faster than declared. So, as BBR's bandwidth probe does, for
// `probe_for` in every `probe_every` the cap rises to `probe_gain` times the
// best of declared and measured; if delivery rose past `growth` times the
// declared rate in two samples of the window (one may be a rank's share of
// the link running ahead of its neighbours' for a moment), the link is faster
// than declared and is paced from what is measured alone until those samples
// age out. Against a policer at the
// declared rate the probe costs what it sends above it: a quarter more, a
// quarter of the time. The probes are slots of the wall clock (not of each
// rank's own history) so that every rank of a region pair, and both
// directions, probe together: a rank's exchanges finish only when its
// partners' sends arrive too. Clocks apart by more than a slot only weaken the
// probe; nothing on the wire depends on it.
//
// Pure logic: the caller passes the time, so tests drive it on a simulated
// clock. Thread-safe (operations that overlap may report at once).
#pragma once

#include <cstdint>
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
    // DeliveryMeter: the shortest stretch of deliveries a sample covers.
    absl::Duration sample_interval = absl::Milliseconds(250);
    // Above a declared rate: the cap's gain, and when it is raised.
    double probe_gain = 1.25;
    absl::Duration probe_every = absl::Seconds(2);
    absl::Duration probe_for = absl::Milliseconds(500);
  };
  RateEstimator() : RateEstimator(Options{}) {}
  explicit RateEstimator(Options options) : options_(options) {}

  const Options& options() const { return options_; }

  // `bytes` crossed the link in `elapsed`, ending at `now`. Ignored unless both are positive.
  void AddSample(absl::Time now, double bytes, absl::Duration elapsed);
  // Bytes per second: the largest sample of the window; 0 before any sample.
  double Estimate() const;
  // Samples taken so far (for logs and tests).
  int64_t samples() const;
  // The pace at `now` for a link whose rate is `declared` (0: none declared):
  // the estimate times `headroom`, or times `startup_gain` while growing; no
  // higher than `declared` unless probing or measured past it (above); `declared`
  // before any sample (0 without one).
  double Pace(absl::Time now, double declared = 0) const;
  // Whether `now` falls in a probe slot of the wall clock.
  bool Probing(absl::Time now) const;

 private:
  struct Sample {
    absl::Time at;
    double bytes_per_s;
  };
  double LargestLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  // The window's samples, oldest first.
  std::deque<Sample> samples_ ABSL_GUARDED_BY(mu_);
  bool growing_ ABSL_GUARDED_BY(mu_) = false;
  int64_t taken_ ABSL_GUARDED_BY(mu_) = 0;
};

// One operation's deliveries across the link, cut into samples for a
// RateEstimator as BBR cuts a flow's: each spans the pieces delivered between
// two deliveries at least `sample_interval` apart, over the longer of the time
// between their sending and between their delivery (data sent slowly and then
// delivered in a burst is not read as a fast link). The first delivery only
// opens the first span: it carries the way across, not the link's rate. One
// thread at a time.
class DeliveryMeter {
 public:
  explicit DeliveryMeter(RateEstimator& rate) : rate_(rate) {}
  // A piece of `bytes` whose sending began at `sent` was delivered at
  // `delivered`. Returns whether it closed a sample.
  bool Delivered(absl::Time sent, absl::Time delivered, double bytes);

 private:
  RateEstimator& rate_;
  bool open_ = false;
  absl::Time sent_from_, delivered_from_;
  double bytes_ = 0;
};

}  // namespace silk
