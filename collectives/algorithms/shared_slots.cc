#include "collectives/algorithms/shared_slots.h"

#include <cstring>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "collectives/kernels/reduce.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {

// Each rank's bytes: in the peers' slots, and this rank's own.
using Sources = absl::InlinedVector<const char*, 16>;

// Publishes this rank's part, then waits for every peer's: `from[p]` is
// peer p's bytes (`expected(p)` of them), valid until Release.
template <typename Expected>
absl::Status Exchange(OpContext& ctx, transport::SharedSlots& slots, const void* mine, size_t my_bytes,
                      Expected expected, Sources* from) {
  const int n = ctx.size(), rank = ctx.rank();
  SILK_RETURN_IF_ERROR(slots.Publish(ctx.op_id(), ctx.descriptor(), mine, my_bytes, ctx.deadline()));
  from->assign(n, nullptr);
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    SILK_ASSIGN_OR_RETURN((*from)[peer],
                          slots.Await(peer, ctx.op_id(), ctx.descriptor(), expected(peer), ctx.deadline()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SlotsAllreduce(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t count, DataType type, ReduceOp op) {
  const size_t bytes = count * DataTypeSize(type);
  const int n = ctx.size(), rank = ctx.rank();
  Sources from;
  SILK_RETURN_IF_ERROR(Exchange(ctx, slots, input, bytes, [bytes](int) { return bytes; }, &from));
  // In place, this rank's input is overwritten before its turn: keep a copy.
  std::vector<char> own;
  if (output == input && rank >= 2 && bytes > 0) {
    own.assign(static_cast<const char*>(input), static_cast<const char*>(input) + bytes);
    from[rank] = own.data();
  } else {
    from[rank] = static_cast<const char*>(input);
  }
  if (bytes > 0) {
    kernels::Reduce(type, op, output, from[0], from[1], count);  // output may be from[0] or from[1] itself
    for (int r = 2; r < n; ++r) kernels::ReduceInto(type, op, output, from[r], count);
    if (op == ReduceOp::kAvg) kernels::Scale(type, output, count, n);
  }
  slots.Release(ctx.op_id());
  return absl::OkStatus();
}

absl::Status SlotsBroadcast(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t bytes, int root) {
  const bool is_root = ctx.rank() == root;
  Sources from;
  SILK_RETURN_IF_ERROR(Exchange(ctx, slots, is_root ? input : nullptr, is_root ? bytes : 0,
                                [&](int peer) { return peer == root ? bytes : 0; }, &from));
  const char* source = is_root ? static_cast<const char*>(input) : from[root];
  if (bytes > 0 && output != source) std::memcpy(output, source, bytes);
  slots.Release(ctx.op_id());
  return absl::OkStatus();
}

absl::Status SlotsBarrier(OpContext& ctx, transport::SharedSlots& slots) {
  Sources from;
  SILK_RETURN_IF_ERROR(Exchange(ctx, slots, nullptr, 0, [](int) { return size_t{0}; }, &from));
  slots.Release(ctx.op_id());
  return absl::OkStatus();
}

}  // namespace silk::algorithms
