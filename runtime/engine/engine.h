// The engine runs a communicator's collectives in the order they were issued,
// on its own threads, so the caller's thread is free. An operation starts only
// after every earlier one has ended, unless it was submitted as independent of
// them (`may_overlap`: it touches no buffer an earlier one still uses); then it
// starts as soon as one of the engine's `streams` threads is free, while the
// earlier ones still run. Over a WAN this matters: consecutive all-reduces of
// gradient buckets each wait a one-way latency, and overlapped they pay it
// about once instead of once each.
//
// Operations start in issue order on every rank, whatever overlaps, so the
// earliest unfinished operation is always running everywhere and nothing can
// deadlock on a free thread.
//
// Every operation gets a deadline when it starts. Any failure (an error from
// the transport, a timeout, a mismatch) becomes the communicator's sticky
// error: the peers are told through the transport, queued operations fail
// at once, and every later Submit returns a Work that has already failed.
//
// A blocking call may let its own thread run its operation (CallerRuns): when
// nothing is queued or running, Submit runs it at once, as an engine thread
// would (same number, deadline, errors, trace), and returns it completed. This
// saves two thread hand-offs, most of the cost of a small collective.
// RunHereIfIdle goes further for the smallest calls: no Work at all, only the
// result.
//
// The engine's threads run operations and nothing else: completion callbacks
// (Work::OnComplete, and through them PyTorch's future callbacks) run on the
// engine's CallbackExecutor. A callback may thus submit an operation and wait
// for it, as PowerSGD's DDP hook does, without stalling the engine; and since
// every operation has a deadline once started and starts once those before it
// end, every Work::Wait is bounded.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/engine/callback_executor.h"
#include "runtime/engine/op_trace.h"
#include "runtime/engine/work.h"
#include "runtime/transport/transport.h"

namespace silk {

// What an algorithm sees while it runs: the transport, scoped to this
// operation's tags and deadline.
class OpContext {
 public:
  // `started`: when the operation started (default: now).
  OpContext(transport::Transport* transport, uint64_t op_id, const OpDescriptor& descriptor, absl::Time deadline,
            absl::Time started = absl::InfinitePast())
      : transport_(transport),
        op_id_(op_id),
        descriptor_(descriptor),
        started_(started == absl::InfinitePast() ? absl::Now() : started),
        deadline_(deadline),
        requests_(&own_requests_),
        note_(&own_note_) {}
  OpContext(const OpContext&) = delete;
  OpContext& operator=(const OpContext&) = delete;
  OpContext(OpContext&& other) noexcept;

  // A view of this operation restricted to `members` (global ranks, this rank
  // among them, the same list on every member): rank(), size() and peers are
  // positions in `members`, and message numbers are offset by `seq_base`, so an
  // algorithm written for a whole communicator runs unchanged inside a region.
  // Requests still count as this operation's. Fails if this rank is not a member.
  absl::StatusOr<OpContext> Group(std::vector<int> members, uint32_t seq_base);

  int rank() const { return members_.empty() ? transport_->rank() : group_rank_; }
  int size() const { return members_.empty() ? transport_->size() : static_cast<int>(members_.size()); }
  // The global rank of position `peer` (the identity outside a group).
  int global_rank(int peer) const { return members_.empty() ? peer : members_[peer]; }
  uint64_t op_id() const { return op_id_; }
  const OpDescriptor& descriptor() const { return descriptor_; }
  absl::Time deadline() const { return deadline_; }
  absl::Time started() const { return started_; }

  // `seq` numbers the messages of this operation between a pair of ranks.
  transport::RequestPtr Send(int peer, uint32_t seq, const void* data, size_t bytes);
  transport::RequestPtr Recv(int peer, uint32_t seq, void* data, size_t bytes);
  // Waits within the operation's deadline (stretched while a WAN link is down: transport.h).
  absl::Status Wait(const transport::RequestPtr& request);
  absl::Status WaitAll(absl::Span<const transport::RequestPtr> requests);

  // Every request this operation posted (the engine waits for them before
  // reporting a failure, so no buffer is touched after the caller sees it).
  const std::vector<transport::RequestPtr>& requests() const { return *requests_; }
  transport::Transport& transport() const { return *transport_; }

  // What the collective layer chose for this operation ("ring", "hierarchical
  // ..."): the SILK_TRACE event and SILK_LOG's plan line show it.
  void Annotate(std::string note) { *note_ = std::move(note); }
  const std::string& note() const { return *note_; }

 private:
  transport::Transport* transport_;
  uint64_t op_id_;
  OpDescriptor descriptor_;
  absl::Time started_;
  absl::Time deadline_;
  std::vector<int> members_;  // empty: the whole communicator
  int group_rank_ = 0;
  uint32_t seq_base_ = 0;
  std::vector<transport::RequestPtr> own_requests_;
  std::vector<transport::RequestPtr>* requests_;  // the root context's list
  std::string own_note_;
  std::string* note_;  // the root context's
};

using OpBody = std::function<absl::Status(OpContext&)>;

class Engine {
 public:
  // `streams`: how many operations may run at once (at least 1).
  Engine(transport::Transport* transport, int rank, int streams = 1);
  ~Engine();  // finishes (or fails) everything queued, then stops

  // Within this scope, this thread's next Submit runs its operation itself
  // when the engine is idle (nothing queued, nothing running); otherwise the
  // operation is queued as usual. For blocking calls, which wait anyway: an
  // async call must not block its caller on its peers.
  class CallerRuns {
   public:
    CallerRuns();
    ~CallerRuns();
    CallerRuns(const CallerRuns&) = delete;
    CallerRuns& operator=(const CallerRuns&) = delete;
    // Whether this thread is in such a scope; clears it (one Submit uses it).
    static bool Take();

   private:
    bool outer_;
  };

  // Queues an operation. It starts after every operation submitted before it
  // has ended, or, with `may_overlap`, once they have all started.
  WorkPtr Submit(const OpDescriptor& descriptor, absl::Duration timeout, OpBody body, bool may_overlap = false);
  // A blocking call's shorter way: when the engine is idle and healthy, runs
  // `body` at once on this thread as the next operation (same number,
  // deadline, sticky error and trace as Submit's) and returns its result,
  // with no Work to allocate, lock and wait for. Otherwise (busy, failed or
  // stopping) returns nullopt having taken nothing: the caller then Submits.
  std::optional<absl::Status> RunHereIfIdle(const OpDescriptor& descriptor, absl::Duration timeout,
                                            absl::FunctionRef<absl::Status(OpContext&)> body);

  // Point-to-point: waits for `requests`, which the caller has already posted
  // (so their order is the caller's), on a waiter thread of its own, outside
  // the issue order and numbering of collectives: only two ranks take part,
  // and a receive whose send comes later must neither wait for the collectives
  // queued before it nor hold up those after it. The wait has the deadline
  // `timeout` (stretched by WAN outages); a failure or timeout is sticky, as a
  // collective's. `op_id` only names the operation in messages.
  WorkPtr Track(uint64_t op_id, const OpDescriptor& descriptor, absl::Duration timeout,
                std::vector<transport::RequestPtr> requests);

  // What this engine has run (Communicator::Stats adds the bytes).
  struct Stats {
    uint64_t collectives = 0;     // completed, successfully or not
    uint64_t point_to_point = 0;  // Track calls completed
    uint64_t failed = 0;
    absl::Duration collective_time;      // sum of the collectives' running times
    absl::Duration point_to_point_time;  // sum of the point-to-point waits
  };
  Stats stats() const;
  // SILK_TRACE (op_trace.h): record every operation from now on, and write the
  // trace when the engine is destroyed. `tier_of_peer[p]` says where the
  // transport's rank p is (kTierNode, kTierRegion, kTierWan; 0 for this rank).
  static constexpr uint8_t kTierNode = 1, kTierRegion = 2, kTierWan = 3;
  // The trace's track of operations run by their caller (CallerRuns).
  static constexpr int kCallerTrack = 100;
  void EnableTrace(const std::string& path, int rank, std::vector<uint8_t> tier_of_peer);

  // The sticky error; OK while healthy.
  absl::Status status() const;
  // Puts the engine (and the transport, so the peers hear of it) into `reason`.
  void Abort(const absl::Status& reason);

 private:
  struct Pending {
    WorkPtr work;
    absl::Duration timeout;
    OpBody body;
    bool may_overlap = false;
  };
  struct Tracked {
    WorkPtr work;
    absl::Time started;
    absl::Time deadline;
    std::vector<transport::RequestPtr> requests;
  };
  void Loop(int stream);
  void Run(Pending& op, int stream);
  // Runs one operation's body on this thread and returns its result (on
  // failure, the sticky error it set). `work`, if any, learns when it
  // started; `*end` is when it ended, if it ran.
  absl::Status Execute(uint64_t op_id, const OpDescriptor& d, absl::Duration timeout,
                       absl::FunctionRef<absl::Status(OpContext&)> body, int stream, Work* work, absl::Time* end);
  void WaiterLoop();
  void Finish(Tracked& op);
  // Counts a finished operation and, with SILK_TRACE, records it; returns when it ended.
  absl::Time Account(uint64_t op_id, const OpDescriptor& descriptor, bool point_to_point, int track,
                     absl::Time start, const std::string& note, const std::vector<transport::RequestPtr>& requests,
                     const absl::Status& result);
  void SetError(const absl::Status& status);

  transport::Transport* const transport_;
  const int rank_;
  mutable absl::Mutex mu_;
  // Signalled when a waiting thread may have work: an operation queued, the
  // running one done with more queued, a wait tracked, or stopping. A
  // condition variable, not Mutex::Await, so that a healthy caller's lock
  // and unlock do not evaluate every idle thread's condition.
  absl::CondVar changed_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_op_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  // error_ is set: read without mu_, so a healthy engine's operations do not
  // take the queue's lock (and wake its waiters' conditions) to learn it.
  std::atomic<bool> failed_{false};
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Point-to-point waits (Track): one waiter thread per operation in flight,
  // kept idle afterwards for the next.
  std::deque<Tracked> tracked_ ABSL_GUARDED_BY(mu_);
  int idle_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> waiters_ ABSL_GUARDED_BY(mu_);
  // Stats, apart from mu_ and without a lock: accounting an operation must
  // not contend with the queue. Each counter is exact; a reader may see one
  // operation counted in one and not yet in another.
  struct Counters {
    std::atomic<uint64_t> collectives{0}, point_to_point{0}, failed{0};
    std::atomic<int64_t> collective_ns{0}, point_to_point_ns{0};
  };
  Counters counters_;
  std::unique_ptr<OpTrace> trace_;  // set before any operation runs (EnableTrace)
  std::vector<uint8_t> tier_of_peer_;
  std::unique_ptr<CallbackExecutor> callbacks_;  // outlives the threads, which complete works
  std::vector<std::thread> threads_;
};

}  // namespace silk
