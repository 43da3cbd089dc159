// Dissemination barrier (Hensgen, Finkel, Manber): in round k every rank
// signals rank + 2^k and waits for rank - 2^k. After ceil(log2 n) rounds each
// rank has heard, directly or through others, that every rank has arrived.
#pragma once

#include "absl/status/status.h"
#include "runtime/engine/engine.h"
#include "runtime/topology.h"

namespace silk::algorithms {

absl::Status DisseminationBarrier(OpContext& ctx);

// Across regions: a dissemination barrier inside each region, one signal
// between the regions' first ranks, another barrier inside each region to
// release. One WAN crossing (R/2) where the flat dissemination pays up to two
// in a chain, and both regions leave together (each leaves when the other's
// signal lands), instead of up to a round trip apart.
absl::Status HierarchicalBarrier(OpContext& ctx, const Topology& topology);

}  // namespace silk::algorithms
