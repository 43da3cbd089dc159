// A cost model of the hierarchical collectives over the tiers measured at
// start-up (runtime/tiers.h): per tier a latency (half the round trip) and a
// rate. It picks how finely to pipeline (HierarchicalPlan::pipeline_chunk_bytes)
// and tells flat from hierarchical. Every rank holds the same tiers, so every
// rank plans the same way (the plan is not in the operation's descriptor).
#pragma once

#include <cstddef>

#include "collectives/algorithms/hierarchical.h"
#include "runtime/tiers.h"
#include "runtime/topology.h"

namespace silk::algorithms {

// Chunk exchanges in flight: enough to fill kWanInflightRtts round trips of the
// WAN's rate, so that the link stays busy while a chunk's data waits in the
// link's queue, for a retransmission, or for a region that started later (a
// depth of 8 measured 740-990 ms for 64 MiB on the virtual cluster where all
// chunks in flight measured 637-674 ms). Each holds a chunk's receive space
// per other region, hence the byte cap.
inline constexpr double kWanInflightRtts = 16;
inline constexpr size_t kMaxInflightBytes = size_t{256} << 20;
size_t PipelineDepthFor(const Tiers& tiers, size_t chunk_bytes, size_t chunks);

// Seconds for a hierarchical all-reduce of `bytes` in `chunks` pipeline
// chunks: the WAN's latency once, then the longer of the WAN's transfer and
// the regions' ring phases of every chunk (which overlap each other), plus the
// first chunk's reduce-scatter and the last one's all-gather, which nothing
// overlaps.
// With `depth` chunks' exchanges in flight (0: PipelineDepthFor's), each of
// which waits the latency, the WAN also cannot finish before (chunks / depth)
// latencies.
// `wan_ratio`: the WAN's bytes per byte of the buffer (below 1 with
// wan_compression: each chunk's share is then also encoded and decoded, at a
// core's rate, on the thread that runs the phases).
double EstimateHierarchicalAllreduce(const Tiers& tiers, const Topology& topology, size_t bytes, size_t chunks,
                                     size_t depth = 0, double wan_ratio = 1);

// Seconds for a flat ring all-reduce over every rank: 2(n-1) steps, each as
// slow as the slowest link the ring crosses.
double EstimateFlatRingAllreduce(const Tiers& tiers, const Topology& topology, size_t bytes);

// The plan with the least estimate, over chunk counts 1, 2, 4, ... with chunks
// of at least 1 MiB, and PipelineDepthFor's depth. Without
// measured tiers: PlanFor's fixed rule.
HierarchicalPlan PlanHierarchical(const Tiers& tiers, const Topology& topology, size_t bytes,
                                  size_t ring_chunk_bytes, double wan_ratio = 1);

}  // namespace silk::algorithms
