// Small collectives through shared memory, run by the thread that calls
// (transport/shared_slots.h): one step each. Every rank publishes its
// descriptor (and its bytes, where it has any) to every peer, then reads every
// peer's publication and checks that it made the same call. So a mismatch
// fails every rank at once, and each rank has entered before any leaves.
//
// The all-reduce combines the inputs in rank order, 0 first, on every rank:
// the same arithmetic on the same bytes, so the results are bit-identical.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"
#include "runtime/transport/shared_slots.h"

namespace silk::algorithms {

// count * size(type) must fit slots.capacity(); `output` may be `input`.
absl::Status SlotsAllreduce(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t count, DataType type, ReduceOp op);

// `input` is read on the root only; every rank's `output` receives it.
absl::Status SlotsBroadcast(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t bytes, int root);

absl::Status SlotsBarrier(OpContext& ctx, transport::SharedSlots& slots);

}  // namespace silk::algorithms
