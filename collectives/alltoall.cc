#include <optional>

#include "collectives/algorithms/pairwise.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

absl::StatusOr<WorkPtr> LaunchAlltoall(Communicator& comm, const AlltoallOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(options.count, comm.size(), options.type, "alltoall"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, bytes, "alltoall input"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, bytes, "alltoall output"));
  SILK_RETURN_IF_ERROR(ValidateNoPartialOverlap(options.input, bytes, options.output, bytes));
  const size_t block_bytes = bytes / comm.size();
  if (std::optional<WorkPtr> work = LaunchBlocksOnSlots(comm, CollectiveKind::kAlltoall, options, block_bytes,
                                                        algorithms::SlotsAlltoall)) {
    return *std::move(work);
  }
  SILK_ASSIGN_OR_RETURN(
      const algorithms::Algorithm algorithm,
      algorithms::ChooseAlgorithm(CollectiveKind::kAlltoall, options.algorithm, comm.config().algorithm, bytes));
  LaunchOptions launch;
  launch.descriptor =
      MakeDescriptor(CollectiveKind::kAlltoall, options.type, ReduceOp::kSum, -1, options.count, algorithm);
  launch.timeout = options.timeout;
  launch.may_overlap = options.may_overlap;
  const AlltoallOptions o = options;
  return Launch(comm, std::move(launch), [o, block_bytes](OpContext& ctx, algorithms::Workspace& ws) {
    return algorithms::PairwiseAlltoall(ctx, ws, o.input, o.output, block_bytes);
  });
}

}  // namespace

absl::StatusOr<WorkPtr> AlltoallAsync(Communicator& comm, const AlltoallOptions& options) {
  return RejectOnError(comm, CollectiveKind::kAlltoall, LaunchAlltoall(comm, options));
}

absl::Status Alltoall(Communicator& comm, const AlltoallOptions& options) {
  BlockingCall blocking;
  return WaitFor(AlltoallAsync(comm, options));
}

}  // namespace silk
