// The emulator's control language: one command per line on its Unix socket,
// one reply line back ("ok", "error: ...", or JSON for stats).
//
//   ping
//   stats
//   set xinjiang chongqing rtt=80ms rate=300mbit loss=0.1% jitter=1ms queue=4000000
//   set xinjiang chongqing rate=1gbit policer=500000
//   set xinjiang>chongqing rate=500mbit
//   cut xinjiang chongqing
//   heal xinjiang chongqing
//
// set/cut/heal act on both directions of the link between the two regions;
// "set A>B" on the direction from A to B only. rate=unlimited (or 0) removes
// the rate limit; queue=0 means one BDP; policer=BYTES polices the rate with
// that burst instead of queueing (0: a shaper again).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace silk::cluster::wanem {

struct ControlCommand {
  enum class Kind { kPing, kStats, kSet, kCut, kHeal };
  Kind kind = Kind::kPing;
  std::string region_a;
  std::string region_b;
  // For kSet: only the fields given change.
  std::optional<double> rtt_ms;
  std::optional<double> rate_bps;  // 0: unlimited
  std::optional<double> loss;
  std::optional<double> jitter_ms;
  std::optional<uint64_t> queue_bytes;
  std::optional<uint64_t> policer_burst_bytes;
  bool one_way = false;  // kSet: only the direction from region_a to region_b
};

absl::StatusOr<ControlCommand> ParseControlCommand(absl::string_view line);

}  // namespace silk::cluster::wanem
