// All-gather of one payload per region: every rank of a region holds the same
// bytes (a region's replicated state, as DiLoCo's region replicas hold their
// pseudo-gradient), and afterwards every rank holds every region's payload.
//
// Each byte crosses to each other region once, and the region's ranks share
// the sending: region Q's payload is cut into one part per rank of receiving
// region R, part j goes from Q's rank (j mod |Q|) to R's rank j, and R then
// gathers the parts on its LAN with a ring. What a region's other ranks hold
// is not compared: the bytes that cross come from one rank each.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "runtime/engine/engine.h"
#include "runtime/topology.h"

namespace silk::algorithms {

// `output` holds num_regions() * bytes, region order; `input` may be this
// rank's own slot of it. `ctx` spans the whole communicator.
absl::Status RegionAllgather(OpContext& ctx, const Topology& topology, const void* input, void* output, size_t bytes,
                             size_t ring_chunk_bytes);

}  // namespace silk::algorithms
