#include "collectives/algorithms/hierarchical.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/algorithms/partition.h"
#include "collectives/algorithms/ring.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/algorithms/wan_codec.h"
#include "collectives/kernels/reduce.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {

// Message numbers: each chunk's phases get their own band, so the rings of
// chunk k and k+1 and the WAN exchanges never reuse a number on one pair.
constexpr uint32_t kBand = 1u << 20;
constexpr size_t kMaxChunks = 1024;
uint32_t ReduceScatterBand(size_t chunk) { return static_cast<uint32_t>(3 * chunk) * kBand; }
uint32_t AllgatherBand(size_t chunk) { return static_cast<uint32_t>(3 * chunk + 1) * kBand; }
uint32_t ExchangeSeq(size_t chunk) { return static_cast<uint32_t>(3 * chunk + 2) * kBand; }

Range Intersect(Range a, Range b) {
  size_t begin = std::max(a.begin, b.begin), end = std::min(a.end(), b.end());
  return end > begin ? Range{begin, end - begin} : Range{begin, 0};
}

// How a region's ranks sit on its nodes. When every node holds the same
// number of them (at least two nodes of at least two ranks), the region reduces
// in two stages: inside each node (shared memory), then across nodes among the
// ranks with the same index on their node (TCP). Between its N nodes that
// carries 2 (N - 1) S in all, where one ring over the region's m ranks puts
// 2 (m - 1) / m S on each of its N node-crossing links (2 S instead of 3 S for
// two nodes of two): less for the kernel's TCP, the scarce CPU.
struct RegionShape {
  int nodes = 0, per_node = 0;
  std::vector<int> node_index, index_on_node;   // per member of the region
  std::vector<std::vector<int>> node_members;    // per node of the region, in rank order
  bool two_level() const { return nodes >= 2 && per_node >= 2; }
};

RegionShape ShapeOf(const Topology& topology, int region) {
  const std::vector<int>& members = topology.region_members(region);
  RegionShape shape;
  std::vector<int> nodes;  // topology node ids in order of first appearance (= lowest rank)
  for (int m : members) {
    auto it = std::find(nodes.begin(), nodes.end(), topology.node_of(m));
    const int j = static_cast<int>(it - nodes.begin());
    if (it == nodes.end()) {
      nodes.push_back(topology.node_of(m));
      shape.node_members.emplace_back();
    }
    shape.node_index.push_back(j);
    shape.index_on_node.push_back(static_cast<int>(shape.node_members[j].size()));
    shape.node_members[j].push_back(m);
  }
  shape.nodes = static_cast<int>(nodes.size());
  shape.per_node = shape.nodes > 0 ? static_cast<int>(shape.node_members[0].size()) : 0;
  for (const auto& on_node : shape.node_members) {
    if (static_cast<int>(on_node.size()) != shape.per_node) shape.per_node = 0;  // uneven: one ring
  }
  return shape;
}

// A chunk of `count` cut into one block per index on a node: block i is what
// the ranks with index i reduce across the nodes.
Blocks NodeBlocks(const RegionShape& shape, size_t count) { return BalancedBlocks(count, shape.per_node); }

// Each member's block of a chunk of `count`: with two stages, member (node j,
// index i) holds part j of node block i; otherwise the balanced blocks of one ring.
Blocks MemberBlocks(const RegionShape& shape, size_t count) {
  const size_t members = shape.node_index.size();
  if (!shape.two_level()) return BalancedBlocks(count, members);
  const Blocks node_blocks = NodeBlocks(shape, count);
  Blocks blocks(members);
  for (size_t p = 0; p < members; ++p) {
    const Range node_block = node_blocks[shape.index_on_node[p]];
    const Range part = Part(node_block.count, shape.nodes, shape.node_index[p]);
    blocks[p] = Range{node_block.begin + part.begin, part.count};
  }
  return blocks;
}

// The WAN exchange of one chunk: what this rank sends and receives, and where
// the other regions' partials land.
struct Exchange {
  size_t chunk = 0;
  Range block;                                   // this rank's block, chunk-relative
  std::vector<char*> partials;                   // per region (own region: the block itself)
  std::vector<transport::RequestPtr> requests;
  // Compressed: this rank's code, and what each sender's span decodes into.
  struct Coded {
    char* span;
    int region;
    Range sender, overlap;
  };
  char* code = nullptr;
  std::vector<Coded> coded;
};

// Quantises a block (left decoded in place) into `code`. Buffers need no
// alignment, the quantiser's float loops do: an odd address goes through scratch.
void EncodeBlock(const WanCodec& codec, Workspace& workspace, char* block, float* residual, size_t n, char* code) {
  auto* out = reinterpret_cast<uint8_t*>(code);
  if (reinterpret_cast<uintptr_t>(block) % alignof(float) == 0) {
    codec.Encode(reinterpret_cast<float*>(block), residual, n, out);
    return;
  }
  char* aligned = workspace.Allocate(n * sizeof(float));
  std::memcpy(aligned, block, n * sizeof(float));
  codec.Encode(reinterpret_cast<float*>(aligned), residual, n, out);
  std::memcpy(block, aligned, n * sizeof(float));
  workspace.Release(aligned);
}

// Paces this rank's sends to its exchange partners for one operation (see
// HierarchicalPlan::wan_bytes_per_s), each at its share of the region's pace;
// Set again re-paces them while the operation runs, and the cap is lifted when
// it ends.
class WanPacing {
 public:
  explicit WanPacing(OpContext& ctx) : ctx_(ctx) {}
  ~WanPacing() {
    if (pace_ == 0) return;
    for (const Partner& p : partners_) ctx_.transport().EndPacing(ctx_.global_rank(p.peer));
  }
  WanPacing(const WanPacing&) = delete;
  WanPacing& operator=(const WanPacing&) = delete;
  void AddPartner(int peer, double share) { partners_.push_back(Partner{peer, share}); }
  // Ignored (false) unless positive and more than 1 % from the pace set.
  bool Set(double bytes_per_s) {
    if (!(bytes_per_s > 0) || std::abs(bytes_per_s - pace_) <= 0.01 * pace_) return false;
    for (const Partner& p : partners_) {
      const int peer = ctx_.global_rank(p.peer);
      ctx_.transport().BeginPacing(peer, static_cast<uint64_t>(std::max(bytes_per_s * p.share, 1.0)));
      // Held already: Begin set the new rate, End gives back its second hold.
      if (pace_ > 0) ctx_.transport().EndPacing(peer);
    }
    pace_ = bytes_per_s;
    return true;
  }

 private:
  struct Partner {
    int peer;
    double share;
  };
  OpContext& ctx_;
  std::vector<Partner> partners_;
  double pace_ = 0;
};

}  // namespace

absl::Status HierarchicalAllreduce(OpContext& ctx, Workspace& workspace, const Topology& topology, const void* input,
                                   void* output, size_t count, DataType type, ReduceOp op,
                                   const HierarchicalPlan& plan) {
  const size_t elem = DataTypeSize(type);
  // Out of place, the region's reduce-scatter reads `input` and writes each
  // rank's block of `output`; everything after works in `output` only.
  const char* in = static_cast<const char*>(input);
  char* data = static_cast<char*>(output);
  const int me = ctx.rank();
  const int my_region = topology.region_of(me);
  const int regions = topology.num_regions();
  const std::vector<int>& local = topology.region_members(my_region);
  const int local_rank = static_cast<int>(std::find(local.begin(), local.end(), me) - local.begin());
  // Averages are sums inside the phases, divided once by the whole count at the end.
  const ReduceOp phase_op = op == ReduceOp::kAvg ? ReduceOp::kSum : op;

  size_t chunk_elems = std::max<size_t>(1, plan.pipeline_chunk_bytes / elem);
  chunk_elems = std::max(chunk_elems, (count + kMaxChunks - 1) / kMaxChunks);
  const size_t chunks = ChunksFor(count, chunk_elems);
  auto chunk_range = [&](size_t k) { return Chunk(Range{0, count}, chunk_elems, k); };
  std::vector<RegionShape> shapes;
  for (int r = 0; r < regions; ++r) shapes.push_back(ShapeOf(topology, r));
  auto blocks_of = [&](size_t k, int region) { return MemberBlocks(shapes[region], chunk_range(k).count); };

  // The compressed WAN hop (float32 sum/avg across regions only): this rank's
  // carried error is its blocks of every chunk, back to back.
  std::optional<WanCodec> codec;
  float* residual = nullptr;
  std::vector<size_t> owned_before(chunks + 1, 0);
  if (plan.wan_compression != Compression::kNone && regions > 1 && type == DataType::kFloat32) {
    codec.emplace(plan.wan_compression, plan.error_feedback);
    for (size_t k = 0; k < chunks; ++k) owned_before[k + 1] = owned_before[k] + blocks_of(k, my_region)[local_rank].count;
    if (plan.error_feedback != nullptr) residual = plan.error_feedback->Share(owned_before[chunks]);
  }

  // The two stages' groups: this rank's node, and the ranks with its index on
  // every node of the region. No pair of ranks is in both, so both stages of a
  // chunk may use the chunk's message band.
  const RegionShape& shape = shapes[my_region];
  std::vector<int> node_group, cross_group;
  if (shape.two_level()) {
    node_group = shape.node_members[shape.node_index[local_rank]];
    for (const auto& on_node : shape.node_members) cross_group.push_back(on_node[shape.index_on_node[local_rank]]);
  }
  const int my_index = shape.two_level() ? shape.index_on_node[local_rank] : 0;
  const int my_node = shape.two_level() ? shape.node_index[local_rank] : 0;
  // The node phase's ranks: the node's (two stages) or the whole region's
  // when it has one node. Through the node's slots, chunk k takes steps 2k
  // (reduce-scatter) and 2k + 1 (all-gather), when every rank of the group
  // decides alike: the same plan, the same chunks, slots that reach each other.
  std::optional<transport::SlotsSubset> slots = [&]() -> std::optional<transport::SlotsSubset> {
    if (!plan.node_slots || chunks == 0 || !(shape.two_level() || shape.nodes == 1)) return std::nullopt;
    const Blocks first = shape.two_level() ? NodeBlocks(shape, chunk_range(0).count) : blocks_of(0, my_region);
    return SlotsAmong(ctx.transport(), shape.two_level() ? node_group : local, first, elem, 2 * chunks);
  }();
  if (slots) ctx.Annotate(ctx.note() + " node-slots");

  auto reduce_scatter = [&](size_t k) -> absl::Status {
    Range c = chunk_range(k);
    if (!shape.two_level()) {
      Blocks blocks = blocks_of(k, my_region);
      SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, ReduceScatterBand(k)));
      if (slots) {
        return SlotsReduceScatterStep(region, *slots, static_cast<int>(2 * k), in + c.begin * elem, blocks,
                                      data + (c.begin + blocks[local_rank].begin) * elem, type, phase_op);
      }
      return RingReduceScatter(region, workspace, in + c.begin * elem, blocks,
                               data + (c.begin + blocks[local_rank].begin) * elem, type, phase_op,
                               plan.ring_chunk_bytes, 0);
    }
    const Blocks node_blocks = NodeBlocks(shape, c.count);
    const Range mine = node_blocks[my_index];
    char* node_block = data + (c.begin + mine.begin) * elem;
    SILK_ASSIGN_OR_RETURN(OpContext node, ctx.Group(node_group, ReduceScatterBand(k)));
    SILK_RETURN_IF_ERROR(slots ? SlotsReduceScatterStep(node, *slots, static_cast<int>(2 * k), in + c.begin * elem,
                                                        node_blocks, node_block, type, phase_op)
                               : RingReduceScatter(node, workspace, in + c.begin * elem, node_blocks, node_block,
                                                   type, phase_op, plan.ring_chunk_bytes, 0));
    const Blocks parts = BalancedBlocks(mine.count, shape.nodes);
    SILK_ASSIGN_OR_RETURN(OpContext across, ctx.Group(cross_group, ReduceScatterBand(k)));
    return RingReduceScatter(across, workspace, node_block, parts, node_block + parts[my_node].begin * elem, type,
                             phase_op, plan.ring_chunk_bytes, 0);
  };
  auto all_gather = [&](size_t k) -> absl::Status {
    Range c = chunk_range(k);
    if (!shape.two_level()) {
      SILK_ASSIGN_OR_RETURN(OpContext region, ctx.Group(local, AllgatherBand(k)));
      if (slots) {
        return SlotsAllgatherStep(region, *slots, static_cast<int>(2 * k + 1), data + c.begin * elem,
                                  blocks_of(k, my_region), elem);
      }
      return RingAllgather(region, data + c.begin * elem, blocks_of(k, my_region), elem, plan.ring_chunk_bytes, 0);
    }
    const Blocks node_blocks = NodeBlocks(shape, c.count);
    const Range mine = node_blocks[my_index];
    SILK_ASSIGN_OR_RETURN(OpContext across, ctx.Group(cross_group, AllgatherBand(k)));
    SILK_RETURN_IF_ERROR(RingAllgather(across, data + (c.begin + mine.begin) * elem,
                                       BalancedBlocks(mine.count, shape.nodes), elem, plan.ring_chunk_bytes, 0));
    SILK_ASSIGN_OR_RETURN(OpContext node, ctx.Group(node_group, AllgatherBand(k)));
    if (slots) {
      return SlotsAllgatherStep(node, *slots, static_cast<int>(2 * k + 1), data + c.begin * elem, node_blocks, elem);
    }
    return RingAllgather(node, data + c.begin * elem, node_blocks, elem, plan.ring_chunk_bytes, 0);
  };
  // Sends this rank's partial block to every overlapping rank of every other
  // region and posts the receives of theirs.
  auto start_exchange = [&](size_t k) {
    Exchange x;
    x.chunk = k;
    x.block = blocks_of(k, my_region)[local_rank];
    char* base = data + chunk_range(k).begin * elem;
    x.partials.assign(regions, nullptr);
    if (codec && x.block.count > 0) {
      x.code = workspace.Allocate(codec->EncodedBytes(x.block.count));
      EncodeBlock(*codec, workspace, base + x.block.begin * elem, residual ? residual + owned_before[k] : nullptr,
                  x.block.count, x.code);
    }
    for (int r = 0; r < regions; ++r) {
      if (r == my_region) {
        x.partials[r] = base + x.block.begin * elem;
        continue;
      }
      if (x.block.count == 0) continue;
      x.partials[r] = workspace.Allocate(x.block.count * elem);
      Blocks theirs = blocks_of(k, r);
      for (size_t j = 0; j < theirs.size(); ++j) {
        Range overlap = Intersect(x.block, theirs[j]);
        if (overlap.count == 0) continue;
        int peer = topology.region_members(r)[j];
        if (codec) {
          const WanCodec::Span in = codec->Covering(theirs[j], overlap), out = codec->Covering(x.block, overlap);
          x.coded.push_back(Exchange::Coded{workspace.Allocate(in.bytes), r, theirs[j], overlap});
          x.requests.push_back(ctx.Recv(peer, ExchangeSeq(k), x.coded.back().span, in.bytes));
          x.requests.push_back(ctx.Send(peer, ExchangeSeq(k), x.code + out.offset, out.bytes));
          continue;
        }
        const size_t offset = (overlap.begin - x.block.begin) * elem;
        x.requests.push_back(ctx.Recv(peer, ExchangeSeq(k), x.partials[r] + offset, overlap.count * elem));
        x.requests.push_back(ctx.Send(peer, ExchangeSeq(k), base + overlap.begin * elem, overlap.count * elem));
      }
    }
    return x;
  };
  // Waits for a chunk's exchange and folds the regions' partials in region order.
  auto finish_exchange = [&](Exchange& x) -> absl::Status {
    SILK_RETURN_IF_ERROR(ctx.WaitAll(x.requests));
    if (x.block.count == 0) return absl::OkStatus();
    for (const Exchange::Coded& c : x.coded) {
      char* into = x.partials[c.region] + (c.overlap.begin - x.block.begin) * elem;
      codec->DecodeOverlap(reinterpret_cast<const uint8_t*>(c.span), c.sender, c.overlap, reinterpret_cast<float*>(into));
      workspace.Release(c.span);
    }
    if (x.code != nullptr) workspace.Release(x.code);
    char* block = x.partials[my_region];
    const size_t n = x.block.count;
    if (regions == 1) {
      // Nothing to fold: the region's reduce-scatter already made the result.
    } else if (regions == 2) {
      // dst may alias an input exactly: a single pass, no copy.
      kernels::Reduce(type, phase_op, block, x.partials[0], x.partials[1], n);
    } else {
      char* acc = workspace.Allocate(n * elem);
      std::memcpy(acc, x.partials[0], n * elem);
      for (int r = 1; r < regions; ++r) kernels::ReduceInto(type, phase_op, acc, x.partials[r], n);
      std::memcpy(block, acc, n * elem);
      workspace.Release(acc);
    }
    if (op == ReduceOp::kAvg) kernels::Scale(type, block, n, topology.size());
    // The exchange is over: later chunks may land in these partials.
    for (int r = 0; r < regions; ++r) {
      if (r != my_region && x.partials[r] != nullptr) workspace.Release(x.partials[r]);
    }
    return absl::OkStatus();
  };

  // Each region sends every chunk to each other region once over a link of
  // rate B; a partner that takes `overlap` of a chunk's `n` elements from this
  // rank gets B * overlap / n of it, so the region's ranks together send at B.
  WanPacing pacing(ctx);
  if ((plan.wan_bytes_per_s > 0 || plan.wan_rate != nullptr) && chunks > 0 && chunk_range(0).count > 0) {
    const Range mine = blocks_of(0, my_region)[local_rank];
    for (int r = 0; r < regions; ++r) {
      if (r == my_region || mine.count == 0) continue;
      Blocks theirs = blocks_of(0, r);
      for (size_t j = 0; j < theirs.size(); ++j) {
        const Range overlap = Intersect(mine, theirs[j]);
        if (overlap.count == 0) continue;
        pacing.AddPartner(topology.region_members(r)[j],
                          static_cast<double>(overlap.count) / chunk_range(0).count);
      }
    }
  }
  pacing.Set(plan.wan_bytes_per_s);
  // Measured (plan.wan_rate): each chunk's exchange, from its posting to its
  // last arrival as the transport stamped them, is a delivery; the pace
  // follows the estimate while the operation runs (a call of gigabytes
  // outlasts the estimator's window) and steps into the probe slots above a
  // declared rate.
  std::optional<DeliveryMeter> meter;
  if (plan.wan_rate != nullptr && regions > 1) meter.emplace(*plan.wan_rate);
  auto delivered = [&](const Exchange& x) {
    if (!meter || x.requests.empty()) return;
    absl::Time sent = absl::InfiniteFuture(), arrived = absl::InfinitePast();
    for (const transport::RequestPtr& request : x.requests) {
      sent = std::min(sent, request->posted());
      arrived = std::max(arrived, request->completed());
    }
    const bool sampled = meter->Delivered(sent, arrived, plan.wan_sample_bytes * chunk_range(x.chunk).count / count);
    const absl::Time now = absl::Now();
    const double pace = plan.wan_rate->Pace(now, plan.wan_declared_bytes_per_s);
    if (pacing.Set(pace) || sampled) {
      Log(LogLevel::kDebug, "WAN pace %.0f Mbit/s: measured %.0f Mbit/s%s%s", pace * 8e-6,
          plan.wan_rate->Estimate() * 8e-6, sampled ? " (new sample)" : "",
          plan.wan_rate->Probing(now) && plan.wan_declared_bytes_per_s > 0 ? ", probing" : "");
    }
  };
  // The WAN is busy from the first exchange to the last one's arrival.
  absl::Time first_exchange = absl::InfiniteFuture(), last_exchange = absl::InfinitePast();
  std::vector<Exchange> in_flight;
  for (size_t k = 0; k < chunks; ++k) {
    SILK_RETURN_IF_ERROR(reduce_scatter(k));
    if (k == 0) first_exchange = absl::Now();
    in_flight.push_back(start_exchange(k));
    // The WAN carries the newest chunks while the oldest one is finished.
    if (in_flight.size() >= std::max<size_t>(plan.pipeline_depth, 2)) {
      SILK_RETURN_IF_ERROR(finish_exchange(in_flight.front()));
      last_exchange = absl::Now();
      delivered(in_flight.front());
      SILK_RETURN_IF_ERROR(all_gather(in_flight.front().chunk));
      in_flight.erase(in_flight.begin());
    }
  }
  for (Exchange& x : in_flight) {
    SILK_RETURN_IF_ERROR(finish_exchange(x));
    last_exchange = absl::Now();
    delivered(x);
    SILK_RETURN_IF_ERROR(all_gather(x.chunk));
  }
  // The exchange took at least the bytes' transfer plus the last byte's way
  // across (half the round trip); what it took beyond that was the link's (or
  // a late region's, or a busy CPU's: the estimator keeps the best sample).
  if (plan.wan_rate != nullptr && regions > 1) {
    plan.wan_rate->AddSample(last_exchange, plan.wan_sample_bytes,
                             last_exchange - first_exchange - absl::Seconds(plan.wan_rtt_s / 2));
  }
  return absl::OkStatus();
}

}  // namespace silk::algorithms
