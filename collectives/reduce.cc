#include "collectives/algorithms/chain.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/algorithms/tree.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {

namespace {

absl::StatusOr<WorkPtr> LaunchReduce(Communicator& comm, const ReduceOptions& options) {
  SILK_RETURN_IF_ERROR(ValidateType(options.type));
  SILK_RETURN_IF_ERROR(ValidateReduceOp(options.op));
  SILK_RETURN_IF_ERROR(ValidateRoot(options.root, comm.size(), "reduce"));
  SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(options.count, 1, options.type, "reduce"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(options.input, bytes, "reduce input"));
  if (comm.rank() == options.root) {
    SILK_RETURN_IF_ERROR(ValidateBuffer(options.output, bytes, "reduce output (on the root)"));
    SILK_RETURN_IF_ERROR(ValidateNoPartialOverlap(options.input, bytes, options.output, bytes));
  }
  transport::SharedSlots* slots = SlotsFor(comm, 0, options.algorithm);
  if (slots != nullptr && algorithms::SlotsBlocksFit(*slots, bytes, 1)) {
    return LaunchOnSlots(comm, *slots,
                         MakeDescriptor(CollectiveKind::kReduce, options.type, options.op, options.root, options.count,
                                        algorithms::Algorithm::kSharedMemory),
                         options.timeout,
                         [input = options.input, output = options.output, count = options.count, type = options.type,
                          op = options.op, root = options.root](OpContext& ctx, transport::SharedSlots& s) {
                           return algorithms::SlotsReduce(ctx, s, input, output, count, type, op, root);
                         });
  }
  SILK_ASSIGN_OR_RETURN(
      const algorithms::Algorithm algorithm,
      algorithms::ChooseAlgorithm(CollectiveKind::kReduce, options.algorithm, comm.config().algorithm, bytes));
  LaunchOptions launch;
  launch.descriptor =
      MakeDescriptor(CollectiveKind::kReduce, options.type, options.op, options.root, options.count, algorithm);
  launch.timeout = options.timeout;
  launch.may_overlap = options.may_overlap;
  const size_t chunk_bytes = comm.config().chunk_bytes;
  const ReduceOptions o = options;
  return Launch(comm, std::move(launch), [o, algorithm, chunk_bytes](OpContext& ctx, algorithms::Workspace& ws) {
    if (algorithm == algorithms::Algorithm::kRing) {
      return algorithms::ChainReduce(ctx, ws, o.input, o.output, o.count, o.type, o.op, o.root, chunk_bytes);
    }
    return algorithms::BinomialReduce(ctx, ws, o.input, o.output, o.count, o.type, o.op, o.root);
  });
}

}  // namespace

absl::StatusOr<WorkPtr> ReduceAsync(Communicator& comm, const ReduceOptions& options) {
  return RejectOnError(comm, CollectiveKind::kReduce, LaunchReduce(comm, options));
}

absl::Status Reduce(Communicator& comm, const ReduceOptions& options) {
  BlockingCall blocking;
  return WaitFor(ReduceAsync(comm, options));
}

}  // namespace silk
