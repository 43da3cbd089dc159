// What each tier of the network costs, measured once when a communicator that
// spans several regions starts: inside a node, inside a region (between
// nodes), and between regions. Collectives read it to plan (flat or
// hierarchical, how finely to pipeline). The probe's bytes show in the
// transport's counters like any others.
//
// Rank 0 measures against one partner per tier (the first other rank on its
// node, the first rank of its region on another node, the first rank of each
// other region) and then sends the table to every rank, so every rank plans
// with the same numbers and so makes the same choices (the plan is not in the
// operation's descriptor). The round trip is the best of a few 8-byte ping-
// pongs; bandwidth is timed on a short burst. On a long fat path a burst of a
// few MB ends before TCP's window has opened, so the WAN's bandwidth comes
// from the cluster spec where it declares the link, and the probe's figure is
// kept beside it only as a lower bound. Where no spec declares it, the WAN
// probe sends bursts of doubling size (from `burst_bytes`, at most 16 times
// that, about two seconds in all) until the rate stops growing, so the model
// plans with the path's rate rather than with slow start's.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace silk {

class Communicator;

struct TierCost {
  bool present = false;       // some pair of ranks spans this tier
  int peer = -1;              // rank 0's partner in the measurement
  double rtt_s = 0;           // best round trip of an 8-byte message
  double bytes_per_s = 0;     // what the model uses (for the WAN: the spec's rate when declared)
  double probed_bytes_per_s = 0;  // what the burst achieved (the WAN's: the fastest burst)
  // The WAN's bursts stopped getting faster before the probe's budget ran out:
  // the rate is the path's (or this machine's), not a lower bound.
  bool rate_settled = false;
  // The rate came from the cluster spec (declared), not from the burst.
  bool rate_declared() const { return present && bytes_per_s != probed_bytes_per_s; }
};

struct Tiers {
  bool measured = false;  // false: one region, or the probe was off (SILK_PROBE_TIERS=0)
  TierCost node, region;
  std::vector<TierCost> wan;  // rank 0's region to each other region, in region order
  // The slowest WAN pair (longest round trip, lowest rate); absent with one region.
  TierCost SlowestWan() const;
  std::string ToString() const;
};

// Runs the probe as one operation on `comm` (every rank must call it, in the
// same place in its sequence of operations). `burst_bytes` is the size timed
// for bandwidth inside a node and a region; the WAN burst is the same.
// `known` (read on rank 0 only; may be null): a table measured earlier for
// the same regions in the same order (an elastic job's previous membership);
// rank 0 sends it instead of measuring again when it covers every tier this
// communicator spans, so the others skip their part as well.
absl::StatusOr<Tiers> ProbeTiers(Communicator& comm, size_t burst_bytes, absl::Duration timeout,
                                 const Tiers* known = nullptr);

// A table as bytes and back (the same on every machine of one job), for
// keeping it between memberships; Decode fails on bytes it did not make.
std::string EncodeTiers(const Tiers& tiers);
absl::StatusOr<Tiers> DecodeTiers(const std::string& bytes);

}  // namespace silk
