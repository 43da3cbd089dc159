// What every collective does between validating its arguments and running its
// algorithm: build the descriptor, and run the algorithm on the engine beside
// a neighbour check that guarantees a mismatch is noticed.
//
// The transport compares descriptors only on messages a rank receives, and in
// some algorithms (a broadcast whose ranks disagree on the root, a barrier
// against a broadcast) a rank might receive nothing from the ranks it
// disagrees with. So every operation also sends one small message to its right
// neighbour and receives one from its left, beside the algorithm's own
// messages (no extra latency): a rank completes only once its left neighbour
// made the same call, so if any two ranks differ, some rank fails, and its
// abort fails the rest.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "collectives/algorithms/selection.h"
#include "collectives/algorithms/shared_slots.h"
#include "collectives/algorithms/workspace.h"
#include "runtime/communicator.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"
#include "runtime/transport/shared_slots.h"

namespace silk {

// OpDescriptor::flags: the algorithm in the low bits, kVaryingCountsFlag for
// all-gatherv (whose count is the total over every rank), kWithinRegionFlag
// for a region-scoped all-reduce, the compression flags for a compressed one
// (0x80 is OpDescriptor::kRejectedFlag).
inline constexpr uint8_t kAlgorithmFlagsMask = 0x07;
inline constexpr uint8_t kVaryingCountsFlag = 0x10;
inline constexpr uint8_t kWithinRegionFlag = 0x20;  // all-reduce among each region's ranks only
// All-reduce: the WAN compression's three bits (Compression: none 0 ... topk
// 4); the top one is kVaryingCountsFlag's, which only all-gather uses.
inline constexpr uint8_t kCompressionLowFlag = 0x08;
inline constexpr uint8_t kCompressionHighFlag = 0x40;
inline constexpr uint8_t kCompressionTopFlag = 0x10;
inline constexpr uint8_t CompressionFlags(uint8_t compression) {
  return static_cast<uint8_t>(((compression & 1) ? kCompressionLowFlag : 0) | ((compression & 2) ? kCompressionHighFlag : 0) |
                              ((compression & 4) ? kCompressionTopFlag : 0));
}
// Whether `d` is an all-gatherv (kVaryingCountsFlag means that only on an all-gather).
inline bool IsAllgatherv(const OpDescriptor& d) {
  return d.kind == CollectiveKind::kAllgather && (d.flags & kVaryingCountsFlag) != 0;
}

OpDescriptor MakeDescriptor(CollectiveKind kind, DataType type, ReduceOp op, int root, uint64_t count,
                            algorithms::Algorithm algorithm, uint8_t extra_flags = 0);

struct LaunchOptions {
  OpDescriptor descriptor;
  absl::Duration timeout;
  bool may_overlap = false;  // see Engine::Submit
  // Arguments the descriptor cannot carry that neighbours must agree on (all-gatherv's counts).
  std::vector<uint64_t> agreed_values;
  const char* agreed_name = "";  // e.g. "counts", for the error message
  // Ranks that check each other (both ways); empty: receive from the left
  // neighbour, send to the right. With agreed_values, list every rank the
  // algorithm receives from, so that no two ranks with different arguments
  // ever exchange data.
  std::vector<int> agreement_peers;
};

using AlgorithmBody = std::function<absl::Status(OpContext&, algorithms::Workspace&)>;

// The shared-memory slots for a call of `bytes` bytes (per rank) on `comm`,
// or null when it goes the usual way: the calling-thread path
// (transport/shared_slots.h) serves communicators whose ranks all share one
// node's memory in one region, calls that fit a slot (`bytes`; 0 for calls
// that check their own fit) and name no algorithm, unless SILK_FAST_PATH=0
// or SILK_ALGO is set. The same on every rank for the same call.
transport::SharedSlots* SlotsFor(Communicator& comm, size_t bytes, const std::string& requested_algorithm);

// Whether a call run by `algorithm` may take the node's slots for its node
// phases (HierarchicalPlan::node_slots): the hierarchical form, with
// SILK_NODE_SLOTS, in several regions, where the communicator's own calls
// never use the slots (SlotsFor). The same on every rank, whatever each passes
// as may_overlap (a per-rank promise that the torch backend, for one, makes
// from what is in flight there), so such a call must run alone (the slots
// keep one order): its launch drops may_overlap.
bool NodeSlotsFor(const Communicator& comm, algorithms::Algorithm algorithm);

using SlotsBody = std::function<absl::Status(OpContext&, transport::SharedSlots&)>;

// Queues `body` on the engine to run on `slots` (algorithm kSharedMemory in
// `descriptor`). The slots check the descriptors themselves: no neighbour check.
WorkPtr QueueOnSlots(Communicator& comm, transport::SharedSlots& slots, const OpDescriptor& descriptor,
                     absl::Duration timeout, SlotsBody body);

// Inside a BlockingCall, when the engine is idle: runs `body` on `slots` at
// once on this thread (Engine::RunHereIfIdle), hands its result to the
// BlockingCall and returns true. Otherwise returns false having done nothing.
bool RunOnSlotsHere(Communicator& comm, transport::SharedSlots& slots, const OpDescriptor& descriptor,
                    absl::Duration timeout, absl::FunctionRef<absl::Status(OpContext&, transport::SharedSlots&)> body);

// Runs `body` (absl::Status(OpContext&, transport::SharedSlots&)) on `slots`:
// a blocking call's thread runs it itself when it can and gets a null Work
// (WaitFor returns the result); otherwise it is queued (QueueOnSlots). A
// template, so that the shortest path copies the body nowhere.
template <typename Body>
WorkPtr LaunchOnSlots(Communicator& comm, transport::SharedSlots& slots, const OpDescriptor& descriptor,
                      absl::Duration timeout, Body body) {
  if (RunOnSlotsHere(comm, slots, descriptor, timeout, body)) return nullptr;
  return QueueOnSlots(comm, slots, descriptor, timeout, SlotsBody(std::move(body)));
}

// All-gather and all-to-all (`kind`): one block of `block_bytes` per rank,
// run by `algorithm` (algorithms::SlotsAllgather or SlotsAlltoall) on the
// slots when they serve the call and its blocks fit; nullopt when it goes the
// usual way. `options` gives the call's type, count, algorithm, timeout and buffers.
using SlotsBlocksAlgorithm = absl::Status (*)(OpContext&, transport::SharedSlots&, const void* input, void* output,
                                              size_t block_bytes);
template <typename Options>
std::optional<WorkPtr> LaunchBlocksOnSlots(Communicator& comm, CollectiveKind kind, const Options& options,
                                           size_t block_bytes, SlotsBlocksAlgorithm algorithm) {
  transport::SharedSlots* slots = SlotsFor(comm, 0, options.algorithm);
  if (slots == nullptr || !algorithms::SlotsBlocksFit(*slots, block_bytes, comm.size())) return std::nullopt;
  return LaunchOnSlots(
      comm, *slots,
      MakeDescriptor(kind, options.type, ReduceOp::kSum, -1, options.count, algorithms::Algorithm::kSharedMemory),
      options.timeout,
      [input = options.input, output = options.output, block_bytes, algorithm](OpContext& ctx,
                                                                                transport::SharedSlots& s) {
        return algorithm(ctx, s, input, output, block_bytes);
      });
}

// Marks the calling thread's collective as blocking (the caller waits for
// it at once) for the launch it makes within this scope.
class BlockingCall {
 public:
  BlockingCall();
  ~BlockingCall();
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;
  static bool active();
  // The launch ran on this thread and ended with `result` (its Work is null);
  // WaitFor takes it.
  static void RanHere(absl::Status result);
  static absl::Status TakeResult();

 private:
  bool outer_;
};

// Queues `body` on the communicator's engine with the neighbour check. With
// agreed_values, the check completes before `body` starts, so ranks that
// disagree never move data laid out differently.
WorkPtr Launch(Communicator& comm, LaunchOptions options, AlgorithmBody body);

// The result of a collective's checks and launch, with a refusal passed to
// Reject (collectives.h).
absl::StatusOr<WorkPtr> RejectOnError(Communicator& comm, CollectiveKind kind, absl::StatusOr<WorkPtr> launched);

// The blocking form: Launch, then wait (a null Work: the call ran on this
// thread; its result is the BlockingCall's).
absl::Status WaitFor(const absl::StatusOr<WorkPtr>& work);

}  // namespace silk
