#include "collectives/algorithms/halving_doubling.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/ring.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

absl::StatusOr<WorkPtr> LaunchReduceScatter(Communicator& comm, const ReduceScatterOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  SILK_RETURN_IF_ERROR(ValidateReduceOp(options.op));
  const int n = comm.size();
  SILK_ASSIGN_OR_RETURN(const size_t input_bytes, BufferBytes(options.count, n, options.type, "reduce_scatter"));
  const size_t output_bytes = input_bytes / n;
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, input_bytes, "reduce_scatter input"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, output_bytes, "reduce_scatter output"));
  const char* in_place_at = static_cast<const char*>(options.input) + comm.rank() * output_bytes;
  SILK_RETURN_IF_ERROR(ValidateBlockPlacement(options.output, output_bytes, options.input, input_bytes, in_place_at,
                                              "reduce_scatter output"));
  transport::SharedSlots* slots = SlotsFor(comm, 0, options.algorithm);
  if (slots != nullptr && algorithms::SlotsBlocksFit(*slots, output_bytes, n)) {
    return LaunchOnSlots(comm, *slots,
                         MakeDescriptor(CollectiveKind::kReduceScatter, options.type, options.op, -1, options.count,
                                        algorithms::Algorithm::kSharedMemory),
                         options.timeout,
                         [input = options.input, output = options.output, count = options.count, type = options.type,
                          op = options.op](OpContext& ctx, transport::SharedSlots& s) {
                           return algorithms::SlotsReduceScatter(ctx, s, input, output, count, type, op);
                         });
  }
  SILK_ASSIGN_OR_RETURN(const algorithms::Algorithm algorithm,
                        algorithms::ChooseAlgorithm(CollectiveKind::kReduceScatter, options.algorithm,
                                                    comm.config().algorithm, input_bytes, comm.num_regions()));
  LaunchOptions launch;
  launch.descriptor =
      MakeDescriptor(CollectiveKind::kReduceScatter, options.type, options.op, -1, options.count, algorithm);
  launch.timeout = options.timeout;
  const size_t chunk_bytes = comm.config().chunk_bytes;
  const ReduceScatterOptions o = options;
  Topology topology = Topology::FromPlacements(comm.placements());
  const bool node_slots = NodeSlotsFor(comm, algorithm);
  launch.may_overlap = options.may_overlap && !node_slots;
  return Launch(comm, std::move(launch), [o, algorithm, chunk_bytes, node_slots, topology = std::move(topology)](
                                             OpContext& ctx, algorithms::Workspace& ws) {
    if (algorithm == algorithms::Algorithm::kHierarchical) {
      const size_t bytes = o.count * DataTypeSize(o.type) * ctx.size();
      algorithms::HierarchicalPlan plan = algorithms::PlanFor(bytes, chunk_bytes);
      plan.node_slots = node_slots;
      return algorithms::HierarchicalReduceScatter(ctx, ws, topology, o.input, o.output, o.count, o.type, o.op, plan);
    }
    const algorithms::Blocks blocks = algorithms::EqualBlocks(o.count, ctx.size());
    if (algorithm == algorithms::Algorithm::kRing) {
      return algorithms::RingReduceScatter(ctx, ws, o.input, blocks, o.output, o.type, o.op, chunk_bytes, 0);
    }
    return algorithms::HalvingDoublingReduceScatter(ctx, ws, o.input, blocks, o.output, o.type, o.op);
  });
}

}  // namespace

absl::StatusOr<WorkPtr> ReduceScatterAsync(Communicator& comm, const ReduceScatterOptions& options) {
  return RejectOnError(comm, CollectiveKind::kReduceScatter, LaunchReduceScatter(comm, options));
}

absl::Status ReduceScatter(Communicator& comm, const ReduceScatterOptions& options) {
  BlockingCall blocking;
  return WaitFor(ReduceScatterAsync(comm, options));
}

}  // namespace silk
