// Memory that every rank of a transport shares (all on one node): the
// calling-thread path for small collectives. Instead of messages through the
// transport's progress threads, each rank publishes an operation's descriptor
// and a few bytes to every peer, and each peer reads them in place, all on the
// threads that call. A collective on it is one step: publish, read every
// peer's, done.
//
// An operation's publications are matched by its id (the communicator's
// operation number) and step (an operation may publish several times: a
// reduce-scatter then an all-gather, chunk after chunk), so successive
// operations never mix; a peer that
// published another call under the same id fails the wait with a mismatch,
// naming both.
// Waits spin briefly, then sleep on a futex (a rank never burns a core for a
// slow peer), and end at their deadline (a timeout naming the peer) or when the
// transport fails (its sticky error: a peer that died, an abort).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/types.h"

namespace silk::transport {

class SharedSlots {
 public:
  virtual ~SharedSlots() = default;

  // Largest payload one publication carries.
  virtual size_t capacity() const = 0;

  // Steps of one operation, numbered from 0: each publishes at most once to
  // each peer.
  static constexpr int kMaxSteps = 256;

  // Publishes `bytes` (at most capacity()) of `data` under (`op_id`, `step`)
  // to `peer`. First waits, bounded by `deadline`, until the peer has read
  // what this rank published there two publications ago (the buffer it reuses).
  virtual absl::Status PublishTo(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor,
                                 const void* data, size_t bytes, absl::Time deadline) = 0;

  // PublishTo every peer, the same bytes.
  absl::Status Publish(uint64_t op_id, int step, const OpDescriptor& descriptor, const void* data, size_t bytes,
                       absl::Time deadline);

  // Waits until `peer` published (`op_id`, `step`), checks that it made the
  // same call (`descriptor`) with `bytes` bytes, and returns its bytes, valid
  // until Release(op_id, step). Fails with the transport's error if it failed
  // meanwhile.
  virtual absl::StatusOr<const char*> Await(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor,
                                            size_t bytes, absl::Time deadline) = 0;

  // Tells every peer that this rank runs operation `op_id` another way (the
  // transport's messages), so that a peer waiting for it in a slot fails at
  // once with a mismatch instead of at its deadline. Never waits.
  virtual void Announce(uint64_t op_id, const OpDescriptor& descriptor) = 0;

  // Tells every peer that this rank is done reading what they published under (`op_id`, `step`).
  virtual void Release(uint64_t op_id, int step) = 0;
  // The same, told to `peer` only.
  virtual void ReleaseFrom(int peer, uint64_t op_id, int step) = 0;

  // The ranks of this transport (publications go to every other one).
  virtual int size() const = 0;
  virtual int rank() const = 0;
  // Whether this rank shares slots with `peer` (node_slots() may leave some out).
  virtual bool reaches(int peer) const = 0;
};

// `base` restricted to `members` (its ranks, this one among them, the same
// list on every member): rank(), size() and peers are positions in the list,
// as in OpContext::Group, and releases go to the members only, so the slots
// of a node serve a group of its ranks (a region's node phase).
class SlotsSubset final : public SharedSlots {
 public:
  SlotsSubset(SharedSlots& base, std::vector<int> members) : base_(base), members_(std::move(members)) {
    for (size_t p = 0; p < members_.size(); ++p) {
      if (members_[p] == base.rank()) rank_ = static_cast<int>(p);
    }
  }

  size_t capacity() const override { return base_.capacity(); }
  absl::Status PublishTo(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor, const void* data,
                         size_t bytes, absl::Time deadline) override {
    return base_.PublishTo(members_[peer], op_id, step, descriptor, data, bytes, deadline);
  }
  absl::StatusOr<const char*> Await(int peer, uint64_t op_id, int step, const OpDescriptor& descriptor, size_t bytes,
                                    absl::Time deadline) override {
    return base_.Await(members_[peer], op_id, step, descriptor, bytes, deadline);
  }
  void Announce(uint64_t op_id, const OpDescriptor& descriptor) override { base_.Announce(op_id, descriptor); }
  void Release(uint64_t op_id, int step) override {
    for (int p = 0; p < size(); ++p) {
      if (p != rank_) base_.ReleaseFrom(members_[p], op_id, step);
    }
  }
  void ReleaseFrom(int peer, uint64_t op_id, int step) override { base_.ReleaseFrom(members_[peer], op_id, step); }
  int size() const override { return static_cast<int>(members_.size()); }
  int rank() const override { return rank_; }
  bool reaches(int peer) const override { return peer == rank_ || base_.reaches(members_[peer]); }

 private:
  SharedSlots& base_;
  const std::vector<int> members_;
  int rank_ = -1;
};

inline absl::Status SharedSlots::Publish(uint64_t op_id, int step, const OpDescriptor& descriptor, const void* data,
                                         size_t bytes, absl::Time deadline) {
  for (int peer = 0; peer < size(); ++peer) {
    if (peer == rank()) continue;
    if (absl::Status s = PublishTo(peer, op_id, step, descriptor, data, bytes, deadline); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace silk::transport
