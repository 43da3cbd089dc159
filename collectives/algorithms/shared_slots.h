// Small and medium collectives through shared memory, run by the thread that
// calls (transport/shared_slots.h). Every rank publishes its descriptor (and
// its bytes, where it has any) to every peer, then reads every peer's
// publication and checks that it made the same call. So a mismatch fails
// every rank at once, and each rank has entered before any leaves. Small
// calls take that one step; a larger all-reduce takes two (see
// kSlotsTwoStepBytes), chunk after chunk when its shares outgrow the slots.
//
// The all-reduce combines the inputs in rank order, 0 first: the same
// arithmetic on the same bytes whichever rank does it, so the results are
// bit-identical on every rank and between the one- and two-step forms.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "collectives/algorithms/partition.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"
#include "runtime/transport/shared_slots.h"
#include "runtime/transport/transport.h"

namespace silk::algorithms {

// From this size on, an all-reduce takes two steps (each rank combines its
// share, then all gather the shares) instead of every rank reading every
// peer's whole input: fewer bytes moved, and the combining split n ways.
inline constexpr size_t kSlotsTwoStepBytes = 64 << 10;

// Above this size an all-reduce goes through the transport's messages, whose
// algorithms (rings, and the WAN's) do better there.
inline constexpr size_t kSlotsLargestBytes = 64 << 20;

// Whether an all-reduce of `count` values on `ranks` ranks fits the slots.
bool SlotsAllreduceFits(const transport::SharedSlots& slots, size_t count, DataType type, int ranks);

// The call must fit (SlotsAllreduceFits); `output` may be `input`.
absl::Status SlotsAllreduce(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t count, DataType type, ReduceOp op);

// `input` is read on the root only; every rank's `output` receives it.
absl::Status SlotsBroadcast(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t bytes, int root);

absl::Status SlotsBarrier(OpContext& ctx, transport::SharedSlots& slots);

// Collectives of one block per rank (`block_bytes` each), chunk by chunk
// when a block outgrows a slot (step c carries chunk c of every block).
// Whether blocks of `block_bytes` fit: at most kSlotsLargestBytes in all
// (`ranks` blocks) and kMaxSteps chunks.
bool SlotsBlocksFit(const transport::SharedSlots& slots, size_t block_bytes, int ranks);

// Every rank's block, in rank order: `output` holds size() blocks; `input` is
// this rank's (it may be its own block of `output`: in place).
absl::Status SlotsAllgather(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t block_bytes);

// `input` holds size() blocks of `count` values; this rank's `output` gets
// block rank() of the reduction, combined in rank order (output may be that
// block of input: in place).
absl::Status SlotsReduceScatter(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                                size_t count, DataType type, ReduceOp op);

// The root's `output` gets the reduction of every rank's `input` (`count`
// values), combined in rank order; every rank still meets every other (the
// descriptors), as in a broadcast. Fits when SlotsBlocksFit(count bytes, 1).
absl::Status SlotsReduce(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                         size_t count, DataType type, ReduceOp op, int root);

// Block p of each rank's `input` goes to rank p, into block (sender) of its
// `output` (which may be `input`: in place).
absl::Status SlotsAlltoall(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                           size_t block_bytes);

// One step of a larger operation (the node phases of the region-aware
// collectives), among the ranks of `slots` (a SlotsSubset, rank() and size()
// those of `ctx`), with one block of `blocks` per rank.

// The node's slots (Transport::node_slots) among `members` (ranks of one
// node, this one included), for a phase of at most `steps` steps whose
// largest blocks are `largest`; nothing unless every member is within reach
// and every block fits a slot. The same answer on every member.
std::optional<transport::SlotsSubset> SlotsAmong(transport::Transport& transport, const std::vector<int>& members,
                                                 const Blocks& largest, size_t element_size, size_t steps);

// Each rank's `output` gets its block of `input` reduced over the ranks, in
// rank order (`output` may be that block of `input`).
absl::Status SlotsReduceScatterStep(OpContext& ctx, transport::SharedSlots& slots, int step, const void* input,
                                    const Blocks& blocks, void* output, DataType type, ReduceOp op);

// Each rank's block of `data` is copied into every other rank's `data`.
absl::Status SlotsAllgatherStep(OpContext& ctx, transport::SharedSlots& slots, int step, void* data,
                                const Blocks& blocks, size_t element_size);

}  // namespace silk::algorithms
