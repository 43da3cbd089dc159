#include <cstring>

#include "collectives/algorithms/halving_doubling.h"
#include "collectives/algorithms/hierarchical.h"
#include "collectives/algorithms/ring.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

absl::StatusOr<WorkPtr> AllreduceAsync(Communicator& comm, const AllreduceOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  SILK_RETURN_IF_ERROR(ValidateReduceOp(options.op));
  SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(options.count, 1, options.type, "allreduce"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, bytes, "allreduce input"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, bytes, "allreduce output"));
  SILK_RETURN_IF_ERROR(ValidateNoPartialOverlap(options.input, bytes, options.output, bytes));
  SILK_ASSIGN_OR_RETURN(
      const algorithms::Algorithm algorithm,
      algorithms::ChooseAlgorithm(CollectiveKind::kAllreduce, options.algorithm, comm.config().algorithm, bytes,
                                  comm.num_regions()));
  LaunchOptions launch;
  launch.descriptor =
      MakeDescriptor(CollectiveKind::kAllreduce, options.type, options.op, -1, options.count, algorithm);
  launch.timeout = options.timeout;
  launch.may_overlap = options.may_overlap;
  const size_t chunk_bytes = comm.config().chunk_bytes;
  const AllreduceOptions o = options;
  Topology topology = Topology::FromPlacements(comm.placements());
  return Launch(comm, std::move(launch), [o, algorithm, chunk_bytes, bytes, topology = std::move(topology)](
                                             OpContext& ctx, algorithms::Workspace& ws) {
    if (algorithm == algorithms::Algorithm::kHierarchical) {
      if (o.input != o.output && bytes > 0) std::memcpy(o.output, o.input, bytes);
      return algorithms::HierarchicalAllreduce(ctx, ws, topology, o.output, o.count, o.type, o.op,
                                               algorithms::PlanFor(bytes, chunk_bytes));
    }
    if (algorithm == algorithms::Algorithm::kRing) {
      return algorithms::RingAllreduce(ctx, ws, o.input, o.output, o.count, o.type, o.op, chunk_bytes);
    }
    return algorithms::HalvingDoublingAllreduce(ctx, ws, o.input, o.output, o.count, o.type, o.op);
  });
}

absl::Status Allreduce(Communicator& comm, const AllreduceOptions& options) {
  return WaitFor(AllreduceAsync(comm, options));
}

}  // namespace silk
