
#include "collectives/algorithms/cost_model.h"
#include "collectives/algorithms/halving_doubling.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/ring.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

absl::StatusOr<WorkPtr> LaunchAllreduce(Communicator& comm, const AllreduceOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  SILK_RETURN_IF_ERROR(ValidateReduceOp(options.op));
  SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(options.count, 1, options.type, "allreduce"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, bytes, "allreduce input"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, bytes, "allreduce output"));
  SILK_RETURN_IF_ERROR(ValidateNoPartialOverlap(options.input, bytes, options.output, bytes));
  const size_t chunk_bytes = comm.config().chunk_bytes;
  Topology topology = Topology::FromPlacements(comm.placements());
  algorithms::HierarchicalPlan plan = algorithms::PlanHierarchical(comm.tiers(), topology, bytes, chunk_bytes);
  // Paced only when the message is larger than the link holds in flight: a
  // smaller one fits in the path's window and queue, goes faster as a burst,
  // and may sit on fewer lanes than the pace is split over.
  const TierCost wan = comm.tiers().SlowestWan();
  if (comm.config().wan_pacing && wan.rate_declared() && bytes >= wan.bytes_per_s * wan.rtt_s) {
    plan.wan_bytes_per_s = wan.bytes_per_s;
  }
  // Regions whose link measured as fast as the LAN are better served flat; the
  // tiers are the same on every rank, so the choice is too.
  int regions = options.within_region ? 1 : comm.num_regions();
  if (regions > 1 && comm.tiers().measured &&
      algorithms::EstimateFlatRingAllreduce(comm.tiers(), topology, bytes) <
          algorithms::EstimateHierarchicalAllreduce(comm.tiers(), topology, bytes,
                                                    (bytes + plan.pipeline_chunk_bytes - 1) / plan.pipeline_chunk_bytes)) {
    regions = 1;
  }
  SILK_ASSIGN_OR_RETURN(
      const algorithms::Algorithm algorithm,
      algorithms::ChooseAlgorithm(CollectiveKind::kAllreduce, options.algorithm, comm.config().algorithm, bytes,
                                  regions));
  LaunchOptions launch;
  launch.descriptor = MakeDescriptor(CollectiveKind::kAllreduce, options.type, options.op, -1, options.count, algorithm,
                                     options.within_region ? kWithinRegionFlag : 0);
  launch.timeout = options.timeout;
  launch.may_overlap = options.may_overlap;
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
  return WaitFor(AllreduceAsync(comm, options));
}

}  // namespace silk
