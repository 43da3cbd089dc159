#include "collectives/algorithms/cost_model.h"

#include <algorithm>
#include <cmath>

namespace silk::algorithms {
namespace {

// Finer chunks cost more than the model sees (each is a ring of messages in
// every region: 128 chunks of 256 KiB took 490-580 ms for 32 MiB on the
// virtual cluster where 32 of 1 MiB took 330-340).
constexpr size_t kMinPipelineChunk = 1 << 20;
constexpr size_t kMaxPipelineChunks = 256;

struct Link {
  double latency_s;  // one way
  double bytes_per_s;
};

// The link a region's ring is as slow as: between nodes where the region has
// several, else inside the node.
Link LanOf(const Tiers& tiers) {
  const TierCost& t = tiers.region.present ? tiers.region : tiers.node;
  if (!t.present) return Link{0, 1e12};  // one rank per region: no ring at all
  return Link{t.rtt_s / 2, std::max(t.bytes_per_s, 1.0)};
}

Link WanOf(const Tiers& tiers) {
  const TierCost t = tiers.SlowestWan();
  if (!t.present) return Link{0, 1e12};
  return Link{t.rtt_s / 2, std::max(t.bytes_per_s, 1.0)};
}

// One core coding float32 for the WAN (BlockQuantizer::Quantize, with error
// feedback) and decoding it, in bytes of float32 per second: about the slowest
// of bf16, int8 and int4 with AVX2 on this project's machine, from memory
// (silk-reduce-bench, 64 MiB: bf16 encodes 3.0 GB/s, int4 3.7-3.9; decoding
// 6.3-7.4), rounded down for a busy core. Without AVX2 int8/int4 encode at
// about 1.5 GB/s: the plan is then a little optimistic about hiding them.
constexpr double kEncodeBytesPerS = 2.5e9;
constexpr double kDecodeBytesPerS = 5e9;

size_t LargestRegion(const Topology& topology) {
  size_t largest = 1;
  for (int g = 0; g < topology.num_regions(); ++g) largest = std::max(largest, topology.region_members(g).size());
  return largest;
}

// A ring reduce-scatter (or all-gather) of `bytes` over `n` ranks on `link`.
double RingPhase(const Link& link, size_t n, double bytes) {
  if (n <= 1) return 0;
  return (n - 1) * (link.latency_s + bytes / n / link.bytes_per_s);
}

}  // namespace

size_t PipelineDepthFor(const Tiers& tiers, size_t chunk_bytes, size_t chunks) {
  const Link wan = WanOf(tiers);
  const double wanted = std::min(kWanInflightRtts * 2 * wan.latency_s * wan.bytes_per_s,
                                 static_cast<double>(kMaxInflightBytes));
  const double depth = std::ceil(wanted / static_cast<double>(std::max<size_t>(chunk_bytes, 1)));
  return std::clamp<size_t>(static_cast<size_t>(std::min(depth, 1e9)), 2, std::max<size_t>(chunks, 2));
}

double EstimateHierarchicalAllreduce(const Tiers& tiers, const Topology& topology, size_t bytes, size_t chunks,
                                     size_t depth, double wan_ratio) {
  chunks = std::max<size_t>(chunks, 1);
  if (depth == 0) depth = PipelineDepthFor(tiers, static_cast<size_t>((bytes + chunks - 1) / chunks * wan_ratio), chunks);
  depth = std::clamp<size_t>(depth, 1, chunks);
  const Link lan = LanOf(tiers), wan = WanOf(tiers);
  const size_t n = LargestRegion(topology);
  const double chunk = static_cast<double>(bytes) / chunks;
  const double phase = RingPhase(lan, n, chunk);  // one chunk's reduce-scatter, or its all-gather
  // Every region sends its partial of the whole buffer to each other region once.
  const double others = std::max(topology.num_regions() - 1, 0);
  // A compressed hop: each rank encodes its block of a chunk (a 1/n share)
  // before sending it and decodes the other regions' after, on the same thread
  // as the phases. The first chunk's encoding and the last one's decoding are
  // exposed like its phases: finer chunks hide more of the codec.
  const double code = wan_ratio < 1 ? chunk / n * (1 / kEncodeBytesPerS + others / kDecodeBytesPerS) : 0;
  const double wan_transfer = others * bytes * wan_ratio / wan.bytes_per_s;
  // Each exchange takes the latency plus its chunk's transfer; `depth` of them overlap.
  const double wan_turns =
      static_cast<double>(chunks) / depth * (wan.latency_s + others * chunk * wan_ratio / wan.bytes_per_s);
  return wan.latency_s + std::max({(2 * phase + code) * chunks, wan_transfer, wan_turns}) + 2 * phase + code;
}

double EstimateFlatRingAllreduce(const Tiers& tiers, const Topology& topology, size_t bytes) {
  const size_t n = static_cast<size_t>(topology.size());
  if (n <= 1) return 0;
  Link link = LanOf(tiers);
  if (topology.num_regions() > 1) {
    // The ring crosses the regions' own links as well as the WAN, and every
    // step waits for its slowest hop.
    const Link wan = WanOf(tiers);
    link = Link{std::max(link.latency_s, wan.latency_s), std::min(link.bytes_per_s, wan.bytes_per_s)};
  }
  return 2 * RingPhase(link, n, static_cast<double>(bytes));
}

HierarchicalPlan PlanHierarchical(const Tiers& tiers, const Topology& topology, size_t bytes,
                                  size_t ring_chunk_bytes, double wan_ratio) {
  if (!tiers.measured) return PlanFor(bytes, ring_chunk_bytes);
  HierarchicalPlan plan;
  plan.ring_chunk_bytes = ring_chunk_bytes;
  size_t best_chunks = 1;
  double best = EstimateHierarchicalAllreduce(tiers, topology, bytes, 1, 0, wan_ratio);
  for (size_t chunks = 2; chunks <= kMaxPipelineChunks && bytes / chunks >= kMinPipelineChunk; chunks *= 2) {
    const double estimate = EstimateHierarchicalAllreduce(tiers, topology, bytes, chunks, 0, wan_ratio);
    if (estimate < best * 0.99) {  // finer only for a real gain: each chunk costs more than the model sees
      best = estimate;
      best_chunks = chunks;
    }
  }
  plan.pipeline_chunk_bytes = std::max<size_t>((bytes + best_chunks - 1) / best_chunks, 1);
  plan.pipeline_depth =
      PipelineDepthFor(tiers, static_cast<size_t>(plan.pipeline_chunk_bytes * wan_ratio), best_chunks);
  return plan;
}

}  // namespace silk::algorithms
