#include "runtime/transport/shm/slots.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <optional>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"

namespace silk::transport::shm {
namespace {

// Spinning: a peer in the same collective usually publishes within a few
// microseconds, if it has a core. Then yields (on an oversubscribed node the
// peer may need this core: there the spin is short), then sleeps. Each sleep
// is bounded so that the deadline and the transport's state are checked now
// and then even if no wake-up comes.
constexpr int kSpins = 256;
constexpr int kOversubscribedSpins = 8;
constexpr absl::Duration kYieldFor = absl::Microseconds(50);
constexpr absl::Duration kLongestSleep = absl::Milliseconds(20);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// More ranks on this node than CPUs this process may use: a spinning rank
// takes a core from a peer that has yet to publish.
bool Oversubscribed(int local_ranks) {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) return false;
  return local_ranks > CPU_COUNT(&cpus);
}

uint32_t* FutexWord(SlotLane& lane) { return reinterpret_cast<uint32_t*>(&lane.epoch); }

// Not FUTEX_PRIVATE: the word lives in memory shared with another process.
void FutexWait(SlotLane& lane, uint32_t expected, absl::Duration timeout) {
  const struct timespec ts = absl::ToTimespec(timeout);
  syscall(SYS_futex, FutexWord(lane), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

std::array<uint64_t, 2> Words(const OpDescriptor& d) {
  std::array<uint64_t, 2> words;
  static_assert(sizeof(words) == sizeof(OpDescriptor));
  std::memcpy(words.data(), &d, sizeof(d));
  return words;
}

// The descriptor `peer` announced for `op_id` in `lane`, if it did.
std::optional<OpDescriptor> Announced(const SlotLane& lane, uint64_t op_id) {
  if (lane.announced.load(std::memory_order_seq_cst) != op_id) return std::nullopt;
  std::array<uint64_t, 2> words = {lane.announced_descriptor[0].load(std::memory_order_seq_cst),
                                   lane.announced_descriptor[1].load(std::memory_order_seq_cst)};
  if (lane.announced.load(std::memory_order_seq_cst) != op_id) return std::nullopt;
  OpDescriptor d;
  std::memcpy(static_cast<void*>(&d), words.data(), sizeof(d));
  return d;
}

// A lane's publications are numbered op_id * kMaxSteps + step, in the order a
// rank makes them. An operation's steps alternate between the lane's two
// buffers, and successive operations start on alternate buffers, so one-step
// operations alternate too.
uint64_t Sequence(uint64_t op_id, int step) { return op_id * SharedSlots::kMaxSteps + step; }
uint64_t OperationOf(uint64_t sequence) { return sequence / SharedSlots::kMaxSteps; }
int BufferOf(uint64_t sequence) { return static_cast<int>((OperationOf(sequence) + sequence % SharedSlots::kMaxSteps) % 2); }

void FutexWakeAll(SlotLane& lane) { syscall(SYS_futex, FutexWord(lane), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0); }

}  // namespace

ShmSlots::ShmSlots(int rank, std::vector<SlotLane*> out, std::vector<SlotLane*> in, std::function<bool()> failed,
                   std::function<absl::Status()> failure)
    : rank_(rank),
      out_(std::move(out)),
      in_(std::move(in)),
      failed_(std::move(failed)),
      failure_(std::move(failure)),
      spins_(Oversubscribed(1 + static_cast<int>(std::count_if(out_.begin(), out_.end(),
                                                               [](SlotLane* l) { return l != nullptr; })))
                 ? kOversubscribedSpins
                 : kSpins),
      counters_(out_.size()) {}

void ShmSlots::Signal(SlotLane& lane) {
  // Dekker with the sleeper (WaitOn): its count goes up before it re-checks,
  // our store (seq_cst) goes out before we read the count. So either it sees
  // the store and does not sleep, or we see it counted and wake it; the
  // epoch moves only then, sparing the line a write per operation.
  if (lane.sleepers.load(std::memory_order_seq_cst) == 0) return;
  lane.epoch.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(lane);
}

template <typename Ready, typename What>
absl::Status ShmSlots::WaitOn(SlotLane& lane, Ready ready, absl::Time deadline, What what) {
  for (int i = 0; i < spins_; ++i) {
    if (ready()) return absl::OkStatus();
    CpuRelax();
  }
  // A peer descheduled by the load around us (or by its own slowness) gets
  // the core; a thread with nothing else to run comes back at once, so this
  // phase is bounded by time.
  const absl::Time stop_yielding = absl::Now() + kYieldFor;
  for (int i = 0;; ++i) {
    if (ready()) return absl::OkStatus();
    if (i % 16 == 15 && (failed_() || absl::Now() >= stop_yielding)) break;
    sched_yield();
  }
  while (true) {
    if (ready()) return absl::OkStatus();
    if (failed_()) return failure_();
    const absl::Time now = absl::Now();
    if (now >= deadline) return TimeoutError(what());
    const uint32_t epoch = lane.epoch.load(std::memory_order_seq_cst);
    lane.sleepers.fetch_add(1, std::memory_order_seq_cst);
    if (!ready() && !failed_()) FutexWait(lane, epoch, std::min(deadline - now, kLongestSleep));
    lane.sleepers.fetch_sub(1, std::memory_order_seq_cst);
  }
}

absl::Status ShmSlots::PublishTo(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor,
                                 const void* data, size_t bytes, absl::Time deadline) {
  if (bytes > kSlotBytes) {
    return absl::InternalError(absl::StrFormat("%d bytes do not fit a shared-memory slot of %d", bytes, kSlotBytes));
  }
  if (peer < 0 || peer >= size() || out_[peer] == nullptr) {
    return absl::InternalError(absl::StrFormat("rank %d has no shared-memory slot to rank %d", rank_, peer));
  }
  if (step < 0 || step >= kMaxSteps) {
    return absl::InternalError(absl::StrFormat("step %d of operation #%d is outside [0, %d)", step, op_id, kMaxSteps));
  }
  SlotLane* lane = out_[peer];
  const uint64_t sequence = Sequence(op_id, step);
  const int b = BufferOf(sequence);
  // The buffer's last contents (two publications ago) must have been read.
  const uint64_t previous = lane->seq[b].load(std::memory_order_relaxed);
  auto read = [&] { return lane->done[b].load(std::memory_order_acquire) >= previous; };
  absl::Status free = WaitOn(*lane, read, deadline, [&] {
    return absl::StrFormat(
        "rank %d timed out waiting for rank %d to read operation #%d from shared memory, to publish operation #%d",
        rank_, peer, OperationOf(previous), op_id);
  });
  if (!free.ok()) return free;
  if (bytes > 0) std::memcpy(lane->data[b], data, bytes);
  lane->descriptor[b] = descriptor;
  lane->bytes[b] = bytes;
  lane->seq[b].store(sequence, std::memory_order_seq_cst);
  Signal(*lane);
  Counters& counted = counters_[peer];
  counted.Add(counted.sent, bytes);
  return absl::OkStatus();
}

absl::Status ShmSlots::Check(int peer, uint64_t op_id, const OpDescriptor& mine, size_t bytes, const SlotLane& lane,
                             int b) const {
  const OpDescriptor theirs = lane.descriptor[b];
  const uint64_t their_bytes = lane.bytes[b];
  if (theirs != mine) {
    return MismatchError(absl::StrFormat(
        "mismatched collective calls at operation #%d: rank %d called %s but rank %d called %s", op_id, rank_,
        mine.ToString(), peer, theirs.ToString()));
  }
  if (their_bytes != bytes) {
    return MismatchError(absl::StrFormat(
        "mismatched message sizes at operation #%d (%s): rank %d expects %d bytes but rank %d published %d", op_id,
        mine.ToString(), rank_, bytes, peer, their_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<const char*> ShmSlots::Await(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor,
                                            size_t bytes, absl::Time deadline) {
  if (peer < 0 || peer >= static_cast<int>(in_.size()) || in_[peer] == nullptr) {
    return absl::InternalError(absl::StrFormat("rank %d has no shared-memory slot from rank %d", rank_, peer));
  }
  if (step < 0 || step >= kMaxSteps) {
    return absl::InternalError(absl::StrFormat("step %d of operation #%d is outside [0, %d)", step, op_id, kMaxSteps));
  }
  SlotLane& lane = *in_[peer];
  const uint64_t sequence = Sequence(op_id, step);
  const int b = BufferOf(sequence);
  // A later id in the buffer means the peer went past this operation without
  // publishing it here: it ran the operation another way.
  auto ready = [&] {
    return lane.seq[b].load(std::memory_order_acquire) >= sequence ||
           lane.announced.load(std::memory_order_relaxed) == op_id;
  };
  absl::Status arrived = WaitOn(lane, ready, deadline, [&] {
    return absl::StrFormat(
        "rank %d timed out waiting for rank %d to reach operation #%d (%s) in shared memory; its last one there is #%d",
        rank_, peer, op_id, descriptor.ToString(),
        OperationOf(std::max(lane.seq[0].load(std::memory_order_relaxed), lane.seq[1].load(std::memory_order_relaxed))));
  });
  if (!arrived.ok()) return arrived;
  const uint64_t seq = lane.seq[b].load(std::memory_order_acquire);
  if (seq < sequence) {
    const std::optional<OpDescriptor> theirs = Announced(lane, op_id);
    if (theirs.has_value() && *theirs != descriptor) {
      return MismatchError(absl::StrFormat(
          "mismatched collective calls at operation #%d: rank %d called %s but rank %d called %s", op_id, rank_,
          descriptor.ToString(), peer, theirs->ToString()));
    }
    return MismatchError(absl::StrFormat(
        "rank %d runs operation #%d (%s) in shared memory but rank %d runs it through the transport "
        "(SILK_FAST_PATH must be the same on every rank)",
        rank_, op_id, descriptor.ToString(), peer));
  }
  if (seq != sequence) {
    return MismatchError(absl::StrFormat(
        "mismatched collective calls at operation #%d: rank %d called %s in shared memory but rank %d is already at "
        "operation #%d there (SILK_FAST_PATH must be the same on every rank)",
        op_id, rank_, descriptor.ToString(), peer, OperationOf(seq)));
  }
  if (absl::Status same = Check(peer, op_id, descriptor, bytes, lane, b); !same.ok()) return same;
  Counters& counted = counters_[peer];
  counted.Add(counted.received, bytes);
  return static_cast<const char*>(lane.data[b]);
}

void ShmSlots::Announce(uint64_t op_id, const OpDescriptor& descriptor) {
  const std::array<uint64_t, 2> words = Words(descriptor);
  for (SlotLane* lane : out_) {
    if (lane == nullptr) continue;
    lane->announced.store(0, std::memory_order_seq_cst);
    lane->announced_descriptor[0].store(words[0], std::memory_order_seq_cst);
    lane->announced_descriptor[1].store(words[1], std::memory_order_seq_cst);
    lane->announced.store(op_id, std::memory_order_seq_cst);
    Signal(*lane);
  }
}

void ShmSlots::Release(uint64_t op_id, int step) {
  for (int peer = 0; peer < static_cast<int>(in_.size()); ++peer) ReleaseFrom(peer, op_id, step);
}

void ShmSlots::ReleaseFrom(int peer, uint64_t op_id, int step) {
  if (peer < 0 || peer >= static_cast<int>(in_.size()) || in_[peer] == nullptr) return;
  const uint64_t sequence = Sequence(op_id, step);
  SlotLane& lane = *in_[peer];
  lane.done[BufferOf(sequence)].store(sequence, std::memory_order_seq_cst);
  Signal(lane);
}

void ShmSlots::WakeAll() {
  for (const auto* lanes : {&out_, &in_}) {
    for (SlotLane* lane : *lanes) {
      if (lane == nullptr) continue;
      lane->epoch.fetch_add(1, std::memory_order_seq_cst);
      FutexWakeAll(*lane);
    }
  }
}

}  // namespace silk::transport::shm
