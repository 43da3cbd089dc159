// The pure model of one direction of a WAN link: a bottleneck with a
// serialization clock and a bounded queue, random loss, propagation delay with
// jitter that never reorders, and cut/heal. No sockets, no clocks: the caller
// passes the time, so the model is exact and unit-testable.
//
// A packet admitted at `now` starts serialization when the bottleneck is free,
// occupies it for bytes*8/rate, then travels rtt/2 +- jitter. If the bytes
// still waiting for the bottleneck would exceed the queue limit, it is dropped
// (tail drop, like a router).
//
// A policer instead (policer_burst_bytes > 0) queues nothing: a token bucket
// of that depth fills at the rate, a packet that finds enough tokens passes at
// once and one that does not is dropped, as a provider's rate limit does.
#pragma once

#include <cstdint>

namespace silk::cluster::wanem {

struct LinkParams {
  double rate_bps = 0;       // bottleneck rate, IP bytes counted; 0: unlimited
  double rtt_ms = 0;         // each direction adds half
  double jitter_ms = 0;      // uniform extra one-way delay in [-jitter, +jitter]
  double loss = 0;           // fraction of packets lost at random, [0, 1)
  uint64_t queue_bytes = 0;  // queue bound; 0: one BDP, at least kMinQueuePackets * mtu
  uint64_t policer_burst_bytes = 0;  // > 0: police the rate with this burst instead of queueing
  uint32_t mtu = 1500;
  bool cut = false;          // drop everything

  static constexpr uint64_t kMinQueuePackets = 64;
  uint64_t QueueLimitBytes() const;
};

struct LinkCounters {
  uint64_t offered_packets = 0;
  uint64_t offered_bytes = 0;
  uint64_t delivered_packets = 0;
  uint64_t delivered_bytes = 0;
  uint64_t dropped_cut = 0;
  uint64_t dropped_loss = 0;
  uint64_t dropped_queue = 0;     // queue bound exceeded: the link is overfull
  uint64_t dropped_policed = 0;   // over the policer's rate and burst
  uint64_t dropped_overflow = 0;  // the emulator ran out of delay-line memory
  uint64_t write_errors = 0;
  // How late the emulator delivered packets compared to their due time (its own
  // scheduling delay): the largest lateness seen and the sum, for a mean.
  int64_t max_late_ns = 0;
  int64_t total_late_ns = 0;
};

// Small, fast, seedable generator (splitmix64); loss draws must be cheap.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  double Uniform();  // [0, 1)

 private:
  uint64_t state_;
};

class LinkDirection {
 public:
  LinkDirection(const LinkParams& params, uint64_t seed) : params_(params), random_(seed) {}

  struct Admission {
    bool accepted = false;
    int64_t deliver_at_ns = 0;  // when accepted: time the packet leaves the far end
  };
  // Decides the fate of a packet of `bytes` arriving at `now_ns`; updates
  // counters. A GSO buffer stands for `segments` wire packets (`bytes` counts
  // all of them): it is queued, lost or delivered whole, and the chance that it
  // is lost is that of any of its segments (the emulator turns offloads off on
  // lossy links, so there every buffer is one packet).
  Admission Admit(int64_t now_ns, uint32_t bytes, uint32_t segments = 1);

  // New parameters apply to packets admitted from now on.
  void SetParams(const LinkParams& params) { params_ = params; }
  const LinkParams& params() const { return params_; }

  // Forgets queued packets (the caller dropped them, e.g. on cut).
  void Flush(int64_t now_ns);

  // Bytes waiting for the bottleneck at `now_ns`.
  uint64_t BacklogBytes(int64_t now_ns) const;

  LinkCounters& counters() { return counters_; }
  const LinkCounters& counters() const { return counters_; }

 private:
  LinkParams params_;
  Random random_;
  LinkCounters counters_;
  bool Police(int64_t now_ns, uint32_t bytes);  // takes the tokens, or false: drop

  int64_t busy_until_ns_ = 0;    // the bottleneck serializes until then
  double tokens_ = -1;           // the policer's bucket (bytes); < 0: full, not yet used
  int64_t tokens_at_ns_ = 0;
  int64_t last_deliver_ns_ = 0;  // deliveries never go back in time: no reordering
};

}  // namespace silk::cluster::wanem
