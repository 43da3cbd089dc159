// Region-aware collectives for a communicator that spans distant regions.
// Each crosses the WAN once per byte and region pair, from every rank's own
// connections (never through one leader), and does the rest inside regions.
//
// All-reduce, per pipeline chunk: a ring reduce-scatter inside each region; then every
// rank exchanges its block of partial sums directly with the ranks of the
// other regions whose blocks overlap it (so every rank's connections share the
// WAN, not one leader's) and folds the regions' partials in region order; then
// a ring all-gather inside each region. Where a region's ranks share one node,
// or in each node's stage below, the ring gives way to one step through the
// node's shared-memory slots when the blocks fit them (plan.node_slots).
// A region whose nodes hold equal
// numbers of its ranks (two or more nodes of two or more) runs each ring in
// two stages instead, inside every node (shared memory) and then across nodes
// among the ranks with the same index, which puts less on the region's TCP.
// Each direction of a two-region WAN
// carries the buffer once (the cut bound's S), both directions at once, so the
// whole costs about S/B + R/2. Chunks overlap: the WAN exchange of chunk k runs
// while the region reduces chunk k+1 and gathers chunk k-1.
//
// Bit-identical everywhere: inside a region each block is reduced in one ring
// order, every region folds the same partials in the same region order, and the
// result is then copied as bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "collectives/algorithms/workspace.h"
#include "collectives/compression/error_feedback.h"
#include "collectives/compression/quantizer.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"
#include "runtime/rate_estimator.h"
#include "runtime/topology.h"

namespace silk::algorithms {

struct HierarchicalPlan {
  size_t pipeline_chunk_bytes = 4 << 20;  // the unit that flows LAN -> WAN -> LAN
  size_t ring_chunk_bytes = 1 << 20;      // pipelining inside each region's ring
  // All-reduce: chunks whose WAN exchange may be in flight at once. Each waits
  // a one-way latency, so enough must fly to keep the link busy meanwhile.
  size_t pipeline_depth = 2;
  // The WAN's pace (bytes/s each way: what earlier operations measured, no
  // higher than a declared rate; see allreduce.cc), or 0. When set, every rank
  // paces what it sends across regions at its share of it: all of a region's
  // ranks send at once, and congestion control left alone overfills the link's
  // queue at every start and loses packets to it (32 MiB on the virtual cluster:
  // 330-340 ms paced against 385-550 ms).
  double wan_bytes_per_s = 0;
  // All-reduce: where to report how fast this operation's WAN exchange went
  // (null: not measured), the bytes it moves across each region pair each way,
  // and the WAN's round trip (the last byte's half of it is not transfer time).
  // When set, the pace follows the estimate during the operation too, capped
  // by the declared rate (0: none) as RateEstimator::Pace says.
  std::shared_ptr<RateEstimator> wan_rate;
  double wan_sample_bytes = 0;
  double wan_rtt_s = 0;
  double wan_declared_bytes_per_s = 0;
  // All-reduce of float32 sum/avg: how the partial sums cross regions (the
  // region phases stay exact; see wan_codec.h), and the caller's carried
  // error for this buffer (may be null).
  Compression wan_compression = Compression::kNone;
  ErrorFeedback* error_feedback = nullptr;
  // The node phase (a region's ranks on one node, or each node's stage of a
  // two-stage region) may run through the transport's node slots
  // (Transport::node_slots) where its blocks fit them. The same on every rank,
  // and only for an operation that never overlaps another: the slots keep one
  // order (collectives/launch.h, NodeSlotsFor).
  bool node_slots = false;
};

// About eight pipeline chunks per message, 1-8 MiB each: enough chunks that the
// WAN is busy while the first is reduced and the last gathered, few enough that
// per-chunk latency inside the regions stays small.
inline HierarchicalPlan PlanFor(size_t bytes, size_t ring_chunk_bytes) {
  HierarchicalPlan plan;
  plan.pipeline_chunk_bytes = std::clamp<size_t>(bytes / 8, size_t{1} << 20, size_t{8} << 20);
  plan.ring_chunk_bytes = ring_chunk_bytes;
  return plan;
}

// `count` elements of `input` reduced into `output`, which may equal `input`
// (but not overlap it otherwise). `ctx` spans the whole communicator.
absl::Status HierarchicalAllreduce(OpContext& ctx, Workspace& workspace, const Topology& topology, const void* input,
                                   void* output, size_t count, DataType type, ReduceOp op,
                                   const HierarchicalPlan& plan);

// All-gather of `count` elements per rank into `output` (size() blocks in rank
// order); this rank's block must already be in place. Every rank's block
// crosses to each other region once, to one receiver there, which then shares
// it inside its region.
absl::Status HierarchicalAllgather(OpContext& ctx, Workspace& workspace, const Topology& topology, void* output,
                                   size_t count, size_t element_size, const HierarchicalPlan& plan);

// Reduce-scatter: `input` holds size() blocks of `count` elements; `output`
// receives block rank() reduced over every rank. Each region reduces every
// block internally; each block's partial then crosses once to its owner, who
// folds the regions' partials in region order.
absl::Status HierarchicalReduceScatter(OpContext& ctx, Workspace& workspace, const Topology& topology,
                                       const void* input, void* output, size_t count, DataType type, ReduceOp op,
                                       const HierarchicalPlan& plan);

// Broadcast from `root`, chunk by chunk. Regions of equal size: the root
// scatters each chunk over its region, every member sends its block to its
// counterpart in each other region (all pairs share the WAN), and every
// region all-gathers. Otherwise the root streams the buffer to one entry rank
// per other region, which passes it along a chain inside its region. `input`
// is read on the root only.
absl::Status HierarchicalBroadcast(OpContext& ctx, const Topology& topology, const void* input, void* output,
                                   size_t bytes, int root, const HierarchicalPlan& plan);

}  // namespace silk::algorithms
