#include "runtime/engine/engine.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"

namespace silk {

// ---- OpContext ----

OpContext::OpContext(OpContext&& other) noexcept
    : transport_(other.transport_),
      op_id_(other.op_id_),
      descriptor_(other.descriptor_),
      started_(other.started_),
      deadline_(other.deadline_),
      members_(std::move(other.members_)),
      group_rank_(other.group_rank_),
      seq_base_(other.seq_base_),
      own_requests_(std::move(other.own_requests_)),
      // A root context owns its list; a group view keeps pointing at its root's.
      requests_(other.requests_ == &other.own_requests_ ? &own_requests_ : other.requests_),
      own_note_(std::move(other.own_note_)),
      note_(other.note_ == &other.own_note_ ? &own_note_ : other.note_) {}

absl::StatusOr<OpContext> OpContext::Group(std::vector<int> members, uint32_t seq_base) {
  const int self = global_rank(rank());
  auto it = std::find(members.begin(), members.end(), self);
  if (it == members.end()) {
    return absl::InternalError(absl::StrFormat("rank %d is not in the group it was asked to run in", self));
  }
  OpContext group(transport_, op_id_, descriptor_, deadline_);
  group.started_ = started_;
  group.group_rank_ = static_cast<int>(it - members.begin());
  group.members_ = std::move(members);
  group.seq_base_ = seq_base_ + seq_base;
  group.requests_ = requests_;
  group.note_ = note_;
  return group;
}

transport::RequestPtr OpContext::Send(int peer, uint32_t seq, const void* data, size_t bytes) {
  requests_->push_back(transport_->Send(global_rank(peer), transport::MessageTag{op_id_, seq_base_ + seq},
                                        descriptor_, data, bytes));
  return requests_->back();
}

transport::RequestPtr OpContext::Recv(int peer, uint32_t seq, void* data, size_t bytes) {
  requests_->push_back(transport_->Recv(global_rank(peer), transport::MessageTag{op_id_, seq_base_ + seq},
                                        descriptor_, data, bytes));
  return requests_->back();
}

absl::Status OpContext::Wait(const transport::RequestPtr& request) {
  return transport::Await(*transport_, *request, started_, deadline_);
}

absl::Status OpContext::WaitAll(absl::Span<const transport::RequestPtr> requests) {
  return transport::AwaitAll(*transport_, requests, started_, deadline_);
}

// ---- Engine ----

Engine::Engine(transport::Transport* transport, int rank, int streams)
    : transport_(transport), rank_(rank), callbacks_(std::make_unique<CallbackExecutor>()) {
  for (int stream = 0; stream < std::max(streams, 1); ++stream) {
    threads_.emplace_back([this, stream] { Loop(stream); });
  }
}

Engine::~Engine() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    changed_.SignalAll();
  }
  for (std::thread& thread : threads_) thread.join();
  std::vector<std::thread> waiters;
  {
    absl::MutexLock lock(&mu_);  // no waiter starts once stopping_ is set
    waiters.swap(waiters_);
  }
  for (std::thread& thread : waiters) thread.join();
  if (trace_ != nullptr) {
    if (absl::Status written = trace_->Write(); !written.ok()) Log(LogLevel::kWarning, "%s", written.message());
  }
  // Every operation has completed; their callbacks (and any operation those
  // submit, which fails at once now) run before the executor stops.
  callbacks_.reset();
}

namespace {
thread_local bool caller_runs = false;
}  // namespace

Engine::CallerRuns::CallerRuns() : outer_(caller_runs) { caller_runs = true; }
Engine::CallerRuns::~CallerRuns() { caller_runs = outer_; }

bool Engine::CallerRuns::Take() { return std::exchange(caller_runs, false); }

WorkPtr Engine::Submit(const OpDescriptor& descriptor, absl::Duration timeout, OpBody body, bool may_overlap) {
  const bool caller_runs = CallerRuns::Take();
  Pending op;
  {
    absl::MutexLock lock(&mu_);
    op.work = std::make_shared<Work>(next_op_id_++, descriptor, timeout, callbacks_.get(), transport_);
    if (!error_.ok()) {
      op.work->Complete(error_);
      return op.work;
    }
    if (stopping_) {
      op.work->Complete(absl::CancelledError("the communicator is being destroyed"));
      return op.work;
    }
    op.timeout = timeout;
    op.body = std::move(body);
    op.may_overlap = may_overlap;
    if (!caller_runs || !queue_.empty() || running_ > 0) {
      WorkPtr work = op.work;
      queue_.push_back(std::move(op));
      changed_.SignalAll();
      return work;
    }
    running_++;  // the engine's threads wait for it as for one of theirs
  }
  Run(op, kCallerTrack);
  absl::MutexLock lock(&mu_);
  running_--;
  if (!queue_.empty()) changed_.SignalAll();
  return op.work;
}

WorkPtr Engine::Track(uint64_t op_id, const OpDescriptor& descriptor, absl::Duration timeout,
                      std::vector<transport::RequestPtr> requests) {
  auto work = std::make_shared<Work>(op_id, descriptor, timeout, callbacks_.get(), transport_);
  work->MarkStarted();
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    // The transport outlives the engine: its requests end with it.
    work->Complete(absl::CancelledError("the communicator is being destroyed"));
    return work;
  }
  const absl::Time now = absl::Now();
  tracked_.push_back(Tracked{work, now, now + timeout, std::move(requests)});
  changed_.SignalAll();
  if (idle_waiters_ == 0) {
    waiters_.emplace_back([this] { WaiterLoop(); });
  } else {
    idle_waiters_--;  // claimed: the next Track before it wakes starts another
  }
  return work;
}

void Engine::WaiterLoop() {
  pthread_setname_np(pthread_self(), "silk-p2p");
  while (true) {
    Tracked op;
    {
      absl::MutexLock lock(&mu_);
      while (tracked_.empty() && !stopping_) changed_.Wait(&mu_);
      if (tracked_.empty()) return;
      op = std::move(tracked_.front());
      tracked_.pop_front();
    }
    Finish(op);
    absl::MutexLock lock(&mu_);
    idle_waiters_++;
  }
}

void Engine::Finish(Tracked& op) {
  absl::Status result = transport::AwaitAll(*transport_, op.requests, op.started, op.deadline);
  Account(op.work->op_id(), op.work->descriptor(), true, -1, op.started, "", op.requests, result);
  if (result.ok()) {
    op.work->Complete(absl::OkStatus());
    return;
  }
  absl::Status failed = Prefixed(result, absl::StrFormat("%s on rank %d failed: ", op.work->descriptor().ToString(), rank_));
  Log(LogLevel::kWarning, "%s", failed.message());
  SetError(failed);
  // As in Run: no request may still touch the caller's buffers when Wait() returns.
  transport::WaitAll(op.requests, absl::Now() + absl::Seconds(10)).IgnoreError();
  op.work->Complete(failed);
}

Engine::Stats Engine::stats() const {
  Stats stats;
  stats.collectives = counters_.collectives.load(std::memory_order_relaxed);
  stats.point_to_point = counters_.point_to_point.load(std::memory_order_relaxed);
  stats.failed = counters_.failed.load(std::memory_order_relaxed);
  stats.collective_time = absl::Nanoseconds(counters_.collective_ns.load(std::memory_order_relaxed));
  stats.point_to_point_time = absl::Nanoseconds(counters_.point_to_point_ns.load(std::memory_order_relaxed));
  return stats;
}

void Engine::EnableTrace(const std::string& path, int rank, std::vector<uint8_t> tier_of_peer) {
  tier_of_peer_ = std::move(tier_of_peer);
  trace_ = std::make_unique<OpTrace>(path, rank);
}

namespace {

// Per tier, the span from the first message posted to the last completed.
std::vector<TracePhase> Phases(const std::vector<transport::RequestPtr>& requests,
                               const std::vector<uint8_t>& tier_of_peer) {
  static const char* const kNames[] = {"", "node", "region", "WAN"};
  TracePhase tiers[4];
  for (const transport::RequestPtr& r : requests) {
    const int peer = r->peer();
    const uint8_t tier = peer >= 0 && peer < static_cast<int>(tier_of_peer.size()) ? tier_of_peer[peer] : 0;
    if (tier == 0 || tier > 3 || r->bytes() == 0) continue;  // 0 bytes: the agreement check
    TracePhase& t = tiers[tier];
    if (t.tier.empty()) {
      t.tier = kNames[tier];
      t.start = absl::InfiniteFuture();
      t.end = absl::InfinitePast();
    }
    (r->kind() == transport::Request::Kind::kSend ? t.bytes_sent : t.bytes_received) += r->bytes();
    t.start = std::min(t.start, r->posted());
    if (const absl::Time done = r->completed(); done != absl::InfiniteFuture()) t.end = std::max(t.end, done);
  }
  std::vector<TracePhase> phases;
  for (TracePhase& t : tiers) {
    if (t.tier.empty()) continue;
    t.end = std::max(t.end, t.start);
    phases.push_back(t);
  }
  return phases;
}

}  // namespace

absl::Time Engine::Account(uint64_t op_id, const OpDescriptor& descriptor, bool point_to_point, int track,
                           absl::Time start, const std::string& note,
                           const std::vector<transport::RequestPtr>& requests, const absl::Status& result) {
  const absl::Time end = absl::Now();
  (point_to_point ? counters_.point_to_point : counters_.collectives).fetch_add(1, std::memory_order_relaxed);
  (point_to_point ? counters_.point_to_point_ns : counters_.collective_ns)
      .fetch_add(absl::ToInt64Nanoseconds(end - start), std::memory_order_relaxed);
  if (!result.ok()) counters_.failed.fetch_add(1, std::memory_order_relaxed);
  if (trace_ == nullptr) return end;
  TraceEvent event;
  event.name = CollectiveKindName(descriptor.kind);
  event.category = point_to_point ? "point-to-point" : "collective";
  event.call = descriptor.ToString();
  event.note = note;
  event.op_id = op_id;
  event.track = point_to_point ? 1000 : track;
  event.start = start;
  event.end = end;
  for (const transport::RequestPtr& r : requests) {
    (r->kind() == transport::Request::Kind::kSend ? event.bytes_sent : event.bytes_received) += r->bytes();
  }
  event.result = result.ok() ? "ok" : std::string(result.message());
  event.phases = Phases(requests, tier_of_peer_);
  trace_->Record(std::move(event));
  return end;
}

absl::Status Engine::status() const {
  if (!failed_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return error_;
}

void Engine::Abort(const absl::Status& reason) {
  SetError(reason.ok() ? absl::AbortedError("aborted by the application") : reason);
}

void Engine::SetError(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return;
    error_ = status;
    failed_.store(true, std::memory_order_release);
  }
  transport_->Abort(status);
}

void Engine::Loop(int stream) {
  const std::string name = stream == 0 ? "silk-engine" : absl::StrFormat("silk-engine%d", stream);
  pthread_setname_np(pthread_self(), name.c_str());
  while (true) {
    Pending op;
    {
      absl::MutexLock lock(&mu_);
      // The front operation may start if it overlaps, or once nothing runs.
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        if (queue_.empty()) return stopping_;
        return queue_.front().may_overlap || running_ == 0;
      };
      while (!ready()) changed_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, and everything queued has started
      op = std::move(queue_.front());
      queue_.pop_front();
      running_++;
      if (!queue_.empty()) changed_.SignalAll();  // the next may overlap, on another stream
    }
    Run(op, stream);
    absl::MutexLock lock(&mu_);
    running_--;
    if (!queue_.empty()) changed_.SignalAll();
  }
}

void Engine::Run(Pending& op, int stream) {
  absl::Time end = absl::InfinitePast();
  absl::Status result =
      Execute(op.work->op_id(), op.work->descriptor(), op.timeout, op.body, stream, op.work.get(), &end);
  op.work->Complete(std::move(result), end);
}

std::optional<absl::Status> Engine::RunHereIfIdle(const OpDescriptor& descriptor, absl::Duration timeout,
                                                  absl::FunctionRef<absl::Status(OpContext&)> body) {
  uint64_t op_id;
  {
    absl::MutexLock lock(&mu_);
    if (!error_.ok() || stopping_ || !queue_.empty() || running_ > 0) return std::nullopt;
    op_id = next_op_id_++;
    running_++;  // the engine's threads wait for it as for one of theirs
  }
  absl::Time end;
  absl::Status result = Execute(op_id, descriptor, timeout, body, kCallerTrack, nullptr, &end);
  absl::MutexLock lock(&mu_);
  running_--;
  if (!queue_.empty()) changed_.SignalAll();
  return result;
}

absl::Status Engine::Execute(uint64_t op_id, const OpDescriptor& d, absl::Duration timeout,
                             absl::FunctionRef<absl::Status(OpContext&)> body, int stream, Work* work,
                             absl::Time* end) {
  if (absl::Status sticky = status(); !sticky.ok()) return sticky;
  // A transport that failed outside any operation (a peer died) fails this one at once.
  absl::Status transport_status = transport_->status();
  auto describe = [&](const absl::Status& s) {
    return Prefixed(s, absl::StrFormat("%s #%d on rank %d failed: ", d.ToString(), op_id, rank_));
  };
  if (!transport_status.ok()) {
    absl::Status failed = describe(transport_status);
    SetError(failed);
    return failed;
  }
  const absl::Time start = absl::Now();
  if (work != nullptr) work->MarkStarted(start);
  OpContext context(transport_, op_id, d, start + timeout, start);
  absl::Status result = body(context);
  *end = Account(op_id, d, false, stream, start, context.note(), context.requests(), result);
  if (result.ok()) return result;
  absl::Status failed = describe(result);
  Log(LogLevel::kWarning, "%s", failed.message());
  SetError(failed);
  // The transport has failed now, so every request completes promptly; wait for
  // them so that no lane still touches the caller's buffers when Wait() returns.
  transport::WaitAll(context.requests(), absl::Now() + absl::Seconds(10)).IgnoreError();
  *end = absl::InfinitePast();  // when the wait ended, not the operation
  return failed;
}

}  // namespace silk
