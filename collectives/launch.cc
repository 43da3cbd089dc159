#include "collectives/launch.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"

namespace silk {
namespace {

// The neighbour check's message number, clear of every algorithm's.
constexpr uint32_t kAgreementSeq = 0xFFFFFFFFu;
// A refused call's message to each peer (see Reject).
constexpr uint32_t kRejectionSeq = 0xFFFFFFFEu;

// Everything the operation owns while it runs; it lives in the engine's
// closure, so it outlives the engine's wait for stray requests after a failure.
struct OpState {
  LaunchOptions options;
  AlgorithmBody body;
  algorithms::Workspace workspace;
  std::vector<std::vector<uint64_t>> received;  // each checked peer's values
  // Whether the communicator's calls may run in its slots (one region, see
  // SlotsFor). In several regions its node phases may use them instead
  // (HierarchicalPlan::node_slots): an announcement would read as a mismatch.
  bool announce_to_slots = false;
};

// A peer's values against this rank's.
absl::Status Compare(OpContext& ctx, const OpState& state, int peer, const std::vector<uint64_t>& theirs) {
  const std::vector<uint64_t>& mine = state.options.agreed_values;
  for (size_t i = 0; i < mine.size(); ++i) {
    if (theirs[i] != mine[i]) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "mismatched %s arguments at operation #%d: rank %d passed %s[%d]=%d but rank %d passed %s[%d]=%d",
          IsAllgatherv(ctx.descriptor()) ? "allgatherv" : CollectiveKindName(ctx.descriptor().kind),
          ctx.op_id(), peer, state.options.agreed_name, i, theirs[i], ctx.rank(), state.options.agreed_name, i,
          mine[i]));
    }
  }
  return absl::OkStatus();
}

// A peer waiting for this operation in a shared-memory slot (a mismatched
// call) learns at once that this rank runs it through the transport.
void AnnounceTo(transport::SharedSlots* slots, OpContext& ctx) {
  if (slots != nullptr && ctx.size() == ctx.transport().size()) slots->Announce(ctx.op_id(), ctx.descriptor());
}

absl::Status Run(OpContext& ctx, OpState& state) {
  const int n = ctx.size(), rank = ctx.rank();
  if (n == 1) return state.body(ctx, state.workspace);
  if (state.announce_to_slots) AnnounceTo(ctx.transport().shared_slots(), ctx);
  std::vector<int> from = state.options.agreement_peers, to = state.options.agreement_peers;
  if (from.empty()) {
    from = {(rank + n - 1) % n};
    to = {(rank + 1) % n};
  }
  std::vector<uint64_t>& mine = state.options.agreed_values;
  const size_t bytes = mine.size() * sizeof(uint64_t);
  static char nothing;  // 0-byte messages still need an address
  state.received.assign(from.size(), std::vector<uint64_t>(mine.size()));
  std::vector<transport::RequestPtr> recvs, sends;
  for (size_t i = 0; i < from.size(); ++i) {
    void* into = bytes > 0 ? static_cast<void*>(state.received[i].data()) : &nothing;
    recvs.push_back(ctx.Recv(from[i], kAgreementSeq, into, bytes));
  }
  const void* payload = bytes > 0 ? static_cast<const void*>(mine.data()) : &nothing;
  for (int peer : to) sends.push_back(ctx.Send(peer, kAgreementSeq, payload, bytes));
  auto check = [&]() -> absl::Status {
    for (size_t i = 0; i < from.size(); ++i) {
      SILK_RETURN_IF_ERROR(ctx.Wait(recvs[i]));
      SILK_RETURN_IF_ERROR(Compare(ctx, state, from[i], state.received[i]));
    }
    return absl::OkStatus();
  };
  const bool agree_first = !mine.empty();
  if (agree_first) SILK_RETURN_IF_ERROR(check());
  SILK_RETURN_IF_ERROR(state.body(ctx, state.workspace));
  if (!agree_first) SILK_RETURN_IF_ERROR(check());
  return ctx.WaitAll(sends);
}

// The plan of a call: its algorithm and variants, for SILK_TRACE and SILK_LOG.
std::string Plan(const OpDescriptor& d) {
  const uint8_t algorithm = d.flags & kAlgorithmFlagsMask;
  std::string plan = algorithm == 0 ? "direct" : AlgorithmName(static_cast<algorithms::Algorithm>(algorithm));
  if (d.flags & kWithinRegionFlag) plan += ", within each region";
  if (IsAllgatherv(d)) plan += ", counts per rank";
  return plan;
}

// SILK_LOG=1: the plan of each new (operation, count, type, variant) once per process.
void LogPlanOnce(const Communicator& comm, const OpDescriptor& d, const std::string& plan) {
  if (!LogEnabled(LogLevel::kInfo)) return;
  static absl::Mutex mu(absl::kConstInit);
  static auto* seen = new absl::flat_hash_set<std::string>();
  const std::string call = d.ToString();
  {
    absl::MutexLock lock(&mu);
    if (seen->size() > 10000 || !seen->insert(call).second) return;  // a bound for endless shapes
  }
  Log(LogLevel::kInfo, "plan: %s runs %s on %d ranks in %d regions", call, plan, comm.size(), comm.num_regions());
}

// A blocking call runs on its own thread when the engine is idle: two thread
// hand-offs fewer (to the engine's thread and back), which is most of a small
// call's time. Only a blocking call may hold its thread for its peers: an
// async one returns at once, whatever the others do.
WorkPtr SubmitFromCaller(Communicator& comm, const OpDescriptor& descriptor, absl::Duration timeout, OpBody body,
                         bool may_overlap) {
  std::optional<Engine::CallerRuns> here;
  if (BlockingCall::active()) here.emplace();
  return comm.Submit(descriptor, timeout, std::move(body), may_overlap);
}

}  // namespace

OpDescriptor MakeDescriptor(CollectiveKind kind, DataType type, ReduceOp op, int root, uint64_t count,
                            algorithms::Algorithm algorithm, uint8_t extra_flags) {
  OpDescriptor d;
  d.kind = kind;
  d.type = type;
  d.op = op;
  d.root = root;
  d.count = count;
  d.flags = static_cast<uint8_t>((static_cast<uint8_t>(algorithm) & kAlgorithmFlagsMask) | extra_flags);
  return d;
}

WorkPtr Launch(Communicator& comm, LaunchOptions options, AlgorithmBody body) {
  algorithms::ScratchPool::Default().SetMaxIdleBytes(comm.config().scratch_pool_bytes);
  auto state = std::make_shared<OpState>();
  state->options = std::move(options);
  state->body = std::move(body);
  state->announce_to_slots = comm.num_regions() <= 1;
  const OpDescriptor descriptor = state->options.descriptor;
  const absl::Duration timeout = state->options.timeout;
  const bool may_overlap = state->options.may_overlap;
  std::string plan = Plan(descriptor);
  LogPlanOnce(comm, descriptor, plan);
  auto run = [state, plan = std::move(plan)](OpContext& ctx) {
    ctx.Annotate(plan);
    absl::Status status = Run(ctx, *state);
    // Scratch buffers go back to the pool only when nothing can touch them.
    const auto& requests = ctx.requests();
    if (status.ok() && std::all_of(requests.begin(), requests.end(), [](const auto& r) { return r->done(); })) {
      state->workspace.Recycle();
    }
    return status;
  };
  return SubmitFromCaller(comm, descriptor, timeout, std::move(run), may_overlap);
}

namespace {
// This thread's BlockingCall: whether one is active, and the result of the
// launch it ran itself, until WaitFor takes it.
struct BlockingState {
  bool active = false;
  bool ran_here = false;
  absl::Status result;
};
thread_local BlockingState blocking;
}  // namespace

BlockingCall::BlockingCall() : outer_(blocking.active) { blocking.active = true; }
BlockingCall::~BlockingCall() {
  blocking.active = outer_;
  blocking.ran_here = false;
}
bool BlockingCall::active() { return blocking.active; }
void BlockingCall::RanHere(absl::Status result) {
  blocking.ran_here = true;
  blocking.result = std::move(result);
}
absl::Status BlockingCall::TakeResult() {
  if (!blocking.ran_here) return absl::InternalError("a collective returned no work and no result");
  blocking.ran_here = false;
  return std::exchange(blocking.result, absl::OkStatus());
}

transport::SharedSlots* SlotsFor(Communicator& comm, size_t bytes, const std::string& requested_algorithm) {
  const Config& config = comm.config();
  if (!config.fast_path || !requested_algorithm.empty() || !config.algorithm.empty() || comm.size() < 2 ||
      comm.num_regions() > 1) {
    return nullptr;
  }
  transport::SharedSlots* slots = comm.transport().shared_slots();
  if (slots == nullptr || bytes > slots->capacity()) return nullptr;
  return slots;
}

bool NodeSlotsFor(const Communicator& comm, algorithms::Algorithm algorithm) {
  return algorithm == algorithms::Algorithm::kHierarchical && comm.config().node_slots && comm.config().fast_path &&
         comm.num_regions() > 1;
}

WorkPtr QueueOnSlots(Communicator& comm, transport::SharedSlots& slots, const OpDescriptor& descriptor,
                     absl::Duration timeout, SlotsBody body) {
  LogPlanOnce(comm, descriptor, "shm-slots");
  auto run = [&slots, body = std::move(body)](OpContext& ctx) {
    ctx.Annotate("shm-slots");
    return body(ctx, slots);
  };
  // Never beside another operation: a rank's publications must follow the
  // operations' order, which overlapping threads would not keep.
  return SubmitFromCaller(comm, descriptor, timeout, std::move(run), /*may_overlap=*/false);
}

bool RunOnSlotsHere(Communicator& comm, transport::SharedSlots& slots, const OpDescriptor& descriptor,
                    absl::Duration timeout, absl::FunctionRef<absl::Status(OpContext&, transport::SharedSlots&)> body) {
  if (!BlockingCall::active()) return false;
  LogPlanOnce(comm, descriptor, "shm-slots");
  std::optional<absl::Status> result = comm.RunHereIfIdle(descriptor, timeout, [&](OpContext& ctx) {
    ctx.Annotate("shm-slots");
    return body(ctx, slots);
  });
  if (!result.has_value()) return false;
  BlockingCall::RanHere(*std::move(result));
  return true;
}

absl::Status Reject(Communicator& comm, CollectiveKind kind, const absl::Status& why) {
  OpDescriptor descriptor;
  descriptor.kind = kind;
  descriptor.flags = OpDescriptor::kRejectedFlag;
  comm.Submit(descriptor, absl::ZeroDuration(), [](OpContext& ctx) {
    // Whatever way the peers run this call, the whole communicator's slots
    // or a node phase's, it is not in a slot here.
    AnnounceTo(ctx.transport().node_slots(), ctx);
    static char nothing;
    std::vector<transport::RequestPtr> requests;
    for (int peer = 0; peer < ctx.size(); ++peer) {
      if (peer == ctx.rank()) continue;
      requests.push_back(ctx.Recv(peer, kRejectionSeq, &nothing, 0));
      requests.push_back(ctx.Send(peer, kRejectionSeq, &nothing, 0));
    }
    return ctx.WaitAll(requests);
  });
  return why;
}

absl::StatusOr<WorkPtr> RejectOnError(Communicator& comm, CollectiveKind kind, absl::StatusOr<WorkPtr> launched) {
  if (launched.ok()) return launched;
  return Reject(comm, kind, launched.status());
}

absl::Status WaitFor(const absl::StatusOr<WorkPtr>& work) {
  if (!work.ok()) return work.status();
  if (*work == nullptr) return BlockingCall::TakeResult();
  return (*work)->Wait();
}

}  // namespace silk
