#include "collectives/algorithms/dissemination.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

absl::StatusOr<WorkPtr> LaunchBarrier(Communicator& comm, const BarrierOptions& options) {
  if (transport::SharedSlots* slots = SlotsFor(comm, 0, options.algorithm)) {
    return LaunchOnSlots(comm, *slots,
                         MakeDescriptor(CollectiveKind::kBarrier, DataType::kUint8, ReduceOp::kSum, -1, 0,
                                        algorithms::Algorithm::kSharedMemory),
                         options.timeout,
                         [](OpContext& ctx, transport::SharedSlots& s) { return algorithms::SlotsBarrier(ctx, s); });
  }
  SILK_ASSIGN_OR_RETURN(const algorithms::Algorithm algorithm,
                        algorithms::ChooseAlgorithm(CollectiveKind::kBarrier, options.algorithm,
                                                    comm.config().algorithm, 0, comm.num_regions()));
  LaunchOptions launch;
  launch.descriptor = MakeDescriptor(CollectiveKind::kBarrier, DataType::kUint8, ReduceOp::kSum, -1, 0, algorithm);
  launch.timeout = options.timeout;
  if (algorithm == algorithms::Algorithm::kHierarchical) {
    return Launch(comm, std::move(launch),
                  [topology = Topology::FromPlacements(comm.placements())](OpContext& ctx, algorithms::Workspace&) {
                    return algorithms::HierarchicalBarrier(ctx, topology);
                  });
  }
  return Launch(comm, std::move(launch),
                [](OpContext& ctx, algorithms::Workspace&) { return algorithms::DisseminationBarrier(ctx); });
}

}  // namespace

absl::StatusOr<WorkPtr> BarrierAsync(Communicator& comm, const BarrierOptions& options) {
  return RejectOnError(comm, CollectiveKind::kBarrier, LaunchBarrier(comm, options));
}

absl::Status Barrier(Communicator& comm, const BarrierOptions& options) {
  BlockingCall blocking;
  return WaitFor(BarrierAsync(comm, options));
}

}  // namespace silk
