// The shared-memory transport's SharedSlots (shared_slots.h): the slot lanes
// of each pair's segment (segment.h). A rank publishes into the lane it
// writes to each peer and reads from the lane each peer writes to it; a
// collective among n ranks thus costs each rank n-1 small copies out and n-1
// reads in, and no thread hand-off at all.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "runtime/transport/shared_slots.h"
#include "runtime/transport/shm/segment.h"

namespace silk::transport::shm {

class ShmSlots : public SharedSlots {
 public:
  // `out[p]`/`in[p]`: the lanes this rank writes to and reads from peer p
  // (null for itself). `failure()` is OK while the transport is healthy, else
  // its sticky error; `failed()` says so cheaply.
  ShmSlots(int rank, std::vector<SlotLane*> out, std::vector<SlotLane*> in, std::function<bool()> failed,
           std::function<absl::Status()> failure);

  size_t capacity() const override { return kSlotBytes; }
  absl::Status PublishTo(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor, const void* data,
                         size_t bytes, absl::Time deadline) override;
  absl::StatusOr<const char*> Await(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor, size_t bytes,
                                    absl::Time deadline) override;
  void Announce(uint64_t op_id, const OpDescriptor& descriptor) override;
  void Release(uint64_t op_id, int step) override;
  void ReleaseFrom(int peer, uint64_t op_id, int step) override;
  int size() const override { return static_cast<int>(out_.size()); }
  int rank() const override { return rank_; }
  bool reaches(int peer) const override {
    return peer == rank_ || (peer >= 0 && peer < size() && out_[peer] != nullptr);
  }

  // Wakes every thread of this process asleep on a lane (the transport failed).
  void WakeAll();

  // Payload bytes published to and read from `peer` through the slots (the
  // transport adds them to its counters).
  uint64_t bytes_sent(int peer) const { return counters_[peer].sent.load(std::memory_order_relaxed); }
  uint64_t bytes_received(int peer) const { return counters_[peer].received.load(std::memory_order_relaxed); }

 private:
  // Waits until `ready()`, on `lane`'s futex once spinning is over; `what()`
  // describes the wait for the timeout's message.
  template <typename Ready, typename What>
  absl::Status WaitOn(SlotLane& lane, Ready ready, absl::Time deadline, What what);
  // Bumps `lane`'s futex word after a store, waking whoever sleeps on it.
  static void Signal(SlotLane& lane);
  absl::Status Check(int peer, uint64_t op_id, const OpDescriptor& mine, size_t bytes, const SlotLane& lane,
                     int buffer) const;

  const int rank_;
  const std::vector<SlotLane*> out_;
  const std::vector<SlotLane*> in_;
  const std::function<bool()> failed_;
  const std::function<absl::Status()> failure_;
  const int spins_;  // polls before yielding: fewer where ranks outnumber CPUs
  // One writer at a time (a communicator's operations on the slots never
  // overlap, and each starts after the last ended), so a load and a store
  // suffice: no locked add on the fast path.
  struct Counters {
    std::atomic<uint64_t> sent{0}, received{0};
    void Add(std::atomic<uint64_t>& counter, uint64_t n) {
      counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
  };
  std::vector<Counters> counters_;
};

}  // namespace silk::transport::shm
