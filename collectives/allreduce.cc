
#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/algorithms/cost_model.h"
#include "collectives/algorithms/halving_doubling.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/ring.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/algorithms/wan_codec.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

// wan_compression: a float32 sum or average, on the hierarchical form.
absl::Status ValidateCompression(const Communicator& comm, const AllreduceOptions& options) {
  const int c = static_cast<int>(options.wan_compression);
  if (c < 0 || c > static_cast<int>(Compression::kTopK)) {
    return absl::InvalidArgumentError(absl::StrFormat("allreduce: unknown wan_compression %d", c));
  }
  if (options.wan_compression == Compression::kNone) {
    if (options.error_feedback != nullptr) {
      return absl::InvalidArgumentError("allreduce: error_feedback without wan_compression");
    }
    return absl::OkStatus();
  }
  const char* name = CompressionName(options.wan_compression);
  if (options.type != DataType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrFormat("allreduce: wan_compression=%s needs float32, not %s", name,
                                                      DataTypeName(options.type)));
  }
  if (options.op != ReduceOp::kSum && options.op != ReduceOp::kAvg) {
    return absl::InvalidArgumentError(
        absl::StrFormat("allreduce: wan_compression=%s needs sum or avg, not %s", name, ReduceOpName(options.op)));
  }
  if (!options.algorithm.empty() && options.algorithm != "hierarchical" && comm.num_regions() > 1 &&
      !options.within_region) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "allreduce: wan_compression=%s runs on the hierarchical algorithm, not \"%s\"", name, options.algorithm));
  }
  return absl::OkStatus();
}

// All ranks on one node: through shared memory, on the caller's thread.
WorkPtr LaunchOnSlots(Communicator& comm, transport::SharedSlots& slots, const AllreduceOptions& o) {
  return silk::LaunchOnSlots(comm, slots,
                             MakeDescriptor(CollectiveKind::kAllreduce, o.type, o.op, -1, o.count,
                                            algorithms::Algorithm::kSharedMemory,
                                            o.within_region ? kWithinRegionFlag : 0),
                             o.timeout,
                             [input = o.input, output = o.output, count = o.count, type = o.type, op = o.op](
                                 OpContext& ctx, transport::SharedSlots& s) {
                               return algorithms::SlotsAllreduce(ctx, s, input, output, count, type, op);
                             });
}

absl::StatusOr<WorkPtr> LaunchAllreduce(Communicator& comm, const AllreduceOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  SILK_RETURN_IF_ERROR(ValidateReduceOp(options.op));
  SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(options.count, 1, options.type, "allreduce"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, bytes, "allreduce input"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, bytes, "allreduce output"));
  SILK_RETURN_IF_ERROR(ValidateNoPartialOverlap(options.input, bytes, options.output, bytes));
  SILK_RETURN_IF_ERROR(ValidateCompression(comm, options));
  const bool compressed = options.wan_compression != Compression::kNone;
  transport::SharedSlots* slots = compressed ? nullptr : SlotsFor(comm, 0, options.algorithm);
  if (slots != nullptr && algorithms::SlotsAllreduceFits(*slots, options.count, options.type, comm.size())) {
    return LaunchOnSlots(comm, *slots, options);
  }
  const size_t chunk_bytes = comm.config().chunk_bytes;
  Topology topology = Topology::FromPlacements(comm.placements());
  // The WAN carries the code, not the floats: plan and pace for its bytes.
  const double wan_ratio = BlockQuantizer(options.wan_compression, algorithms::kWanCompressionGroup).BitsPerValue() / 32;
  algorithms::HierarchicalPlan plan =
      algorithms::PlanHierarchical(comm.tiers(), topology, bytes, chunk_bytes, wan_ratio);
  plan.wan_compression = options.wan_compression;
  plan.error_feedback = options.error_feedback;
  // Paced only when the message is larger than the link holds in flight: a
  // smaller one fits in the path's window and queue, goes faster as a burst,
  // and may sit on fewer lanes than the pace is split over. Such an operation
  // also measures the WAN, for itself as it runs and for the next ones: the
  // pace is above what was measured (rate_estimator.h: a cap on bursts, not a
  // target; the first is not paced unless the spec declares the rate), above a
  // declared rate only while probing it or once measured past it. The pace is
  // this rank's own: nothing on the wire depends on it.
  const TierCost wan = comm.tiers().SlowestWan();
  RateEstimator& measured = *comm.wan_rate();
  const double known = measured.Estimate() > 0 ? measured.Estimate() : wan.bytes_per_s;
  if (wan.present && bytes * wan_ratio >= known * wan.rtt_s) {
    const double declared = wan.rate_declared() ? wan.bytes_per_s : 0;
    double pace = declared;
    if (comm.config().wan_pacing_measured) {
      plan.wan_rate = comm.wan_rate();
      plan.wan_sample_bytes = bytes * wan_ratio;
      plan.wan_rtt_s = wan.rtt_s;
      plan.wan_declared_bytes_per_s = declared;
      pace = measured.Pace(absl::Now(), declared);
    }
    if (comm.config().wan_pacing) plan.wan_bytes_per_s = pace;
  }
  // Regions whose link measured as fast as the LAN are better served flat; the
  // tiers are the same on every rank, so the choice is too. A compressed call
  // stays hierarchical: only that form knows which hop to compress.
  int regions = options.within_region ? 1 : comm.num_regions();
  if (regions > 1 && comm.tiers().measured && !compressed &&
      algorithms::EstimateFlatRingAllreduce(comm.tiers(), topology, bytes) <
          algorithms::EstimateHierarchicalAllreduce(comm.tiers(), topology, bytes,
                                                    (bytes + plan.pipeline_chunk_bytes - 1) / plan.pipeline_chunk_bytes)) {
    regions = 1;
  }
  // Compressed across regions: the hierarchical form whatever SILK_ALGO says
  // (an explicit other algorithm fails in ValidateCompression).
  const std::string configured = compressed && regions > 1 ? "hierarchical" : comm.config().algorithm;
  SILK_ASSIGN_OR_RETURN(algorithms::Algorithm algorithm,
                        algorithms::ChooseAlgorithm(CollectiveKind::kAllreduce, options.algorithm, configured, bytes,
                                                    regions));
  // The hierarchical form reduces over every region: inside one, asked for or
  // configured (SILK_ALGO), it would silently sum the other regions in too.
  if (options.within_region && algorithm == algorithms::Algorithm::kHierarchical) {
    SILK_ASSIGN_OR_RETURN(algorithm, algorithms::ChooseAlgorithm(CollectiveKind::kAllreduce, "", "", bytes, 1));
  }
  if (compressed && options.error_feedback != nullptr) {
    SILK_RETURN_IF_ERROR(options.error_feedback->Bind(options.count, options.wan_compression, comm.rank(), comm.size()));
  }
  LaunchOptions launch;
  const uint8_t flags = static_cast<uint8_t>((options.within_region ? kWithinRegionFlag : 0) |
                                             CompressionFlags(static_cast<uint8_t>(options.wan_compression)));
  launch.descriptor =
      MakeDescriptor(CollectiveKind::kAllreduce, options.type, options.op, -1, options.count, algorithm, flags);
  launch.timeout = options.timeout;
  plan.node_slots = NodeSlotsFor(comm, algorithm);
  launch.may_overlap = options.may_overlap && !plan.node_slots;
  const AllreduceOptions o = options;
  return Launch(comm, std::move(launch), [o, algorithm, chunk_bytes, bytes, plan, topology = std::move(topology)](
                                             OpContext& ctx, algorithms::Workspace& ws) {
    if (algorithm == algorithms::Algorithm::kHierarchical) {
      return algorithms::HierarchicalAllreduce(ctx, ws, topology, o.input, o.output, o.count, o.type, o.op, plan);
    }
    auto flat = [&](OpContext& on) {
      if (algorithm == algorithms::Algorithm::kRing) {
        return algorithms::RingAllreduce(on, ws, o.input, o.output, o.count, o.type, o.op, chunk_bytes);
      }
      return algorithms::HalvingDoublingAllreduce(on, ws, o.input, o.output, o.count, o.type, o.op);
    };
    if (!o.within_region) return flat(ctx);
    const int global = ctx.global_rank(ctx.rank());
    SILK_ASSIGN_OR_RETURN(OpContext region,
                          ctx.Group(topology.region_members(topology.region_of(global)), /*seq_base=*/0));
    return flat(region);
  });
}

}  // namespace

absl::StatusOr<WorkPtr> AllreduceAsync(Communicator& comm, const AllreduceOptions& options) {
  return RejectOnError(comm, CollectiveKind::kAllreduce, LaunchAllreduce(comm, options));
}

absl::Status Allreduce(Communicator& comm, const AllreduceOptions& options) {
  BlockingCall blocking;
  return WaitFor(AllreduceAsync(comm, options));
}

}  // namespace silk
