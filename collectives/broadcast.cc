#include "collectives/algorithms/chain.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/algorithms/tree.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

absl::StatusOr<WorkPtr> LaunchBroadcast(Communicator& comm, const BroadcastOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  SILK_RETURN_IF_ERROR(ValidateRoot(options.root, comm.size(), "broadcast"));
  SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(options.count, 1, options.type, "broadcast"));
  const bool root = comm.rank() == options.root;
  if (root) {
    SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, bytes, "broadcast input (on the root)"));
    SILK_RETURN_IF_ERROR(ValidateNoPartialOverlap(options.input, bytes, options.output, bytes));
  }
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, bytes, "broadcast output"));
  if (transport::SharedSlots* slots = SlotsFor(comm, bytes, options.algorithm)) {
    return LaunchOnSlots(comm, *slots,
                         MakeDescriptor(CollectiveKind::kBroadcast, options.type, ReduceOp::kSum, options.root,
                                        options.count, algorithms::Algorithm::kSharedMemory),
                         options.timeout,
                         [input = options.input, output = options.output, bytes, root = options.root](
                             OpContext& ctx, transport::SharedSlots& s) {
                           return algorithms::SlotsBroadcast(ctx, s, input, output, bytes, root);
                         });
  }
  SILK_ASSIGN_OR_RETURN(
      const algorithms::Algorithm algorithm,
      algorithms::ChooseAlgorithm(CollectiveKind::kBroadcast, options.algorithm, comm.config().algorithm, bytes,
                                  comm.num_regions()));
  LaunchOptions launch;
  launch.descriptor =
      MakeDescriptor(CollectiveKind::kBroadcast, options.type, ReduceOp::kSum, options.root, options.count, algorithm);
  launch.timeout = options.timeout;
  const size_t chunk_bytes = comm.config().chunk_bytes;
  const BroadcastOptions o = options;
  Topology topology = Topology::FromPlacements(comm.placements());
  algorithms::HierarchicalPlan plan = algorithms::PlanFor(bytes, chunk_bytes);
  plan.node_slots = NodeSlotsFor(comm, algorithm);
  launch.may_overlap = options.may_overlap && !plan.node_slots;
  return Launch(comm, std::move(launch), [o, bytes, algorithm, chunk_bytes, plan, topology = std::move(topology)](
                                             OpContext& ctx, algorithms::Workspace&) {
    if (algorithm == algorithms::Algorithm::kHierarchical) {
      return algorithms::HierarchicalBroadcast(ctx, topology, o.input, o.output, bytes, o.root, plan);
    }
    if (algorithm == algorithms::Algorithm::kRing) {
      return algorithms::ChainBroadcast(ctx, o.input, o.output, bytes, o.root, chunk_bytes);
    }
    return algorithms::BinomialBroadcast(ctx, o.input, o.output, bytes, o.root);
  });
}

}  // namespace

absl::StatusOr<WorkPtr> BroadcastAsync(Communicator& comm, const BroadcastOptions& options) {
  return RejectOnError(comm, CollectiveKind::kBroadcast, LaunchBroadcast(comm, options));
}

absl::Status Broadcast(Communicator& comm, const BroadcastOptions& options) {
  BlockingCall blocking;
  return WaitFor(BroadcastAsync(comm, options));
}

}  // namespace silk
