// Memory that every rank of a transport shares (all on one node): the
// calling-thread path for small collectives. Instead of messages through the
// transport's progress threads, each rank publishes an operation's descriptor
// and a few bytes to every peer, and each peer reads them in place, all on the
// threads that call. A collective on it is one step: publish, read every
// peer's, done.
//
// An operation's publications are matched by its id (the communicator's
// operation number), so successive operations never mix; a peer that published
// another call under the same id fails the wait with a mismatch, naming both.
// Waits spin briefly, then sleep on a futex (a rank never burns a core for a
// slow peer), and end at their deadline (a timeout naming the peer) or when the
// transport fails (its sticky error: a peer that died, an abort).
#pragma once

#include <cstddef>
#include <cstdint>

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

  // Publishes `bytes` (at most capacity()) of `data` under `op_id` to every
  // peer. First waits, bounded by `deadline`, until every peer has read what
  // this rank published two operations ago (the buffer it reuses).
  virtual absl::Status Publish(uint64_t op_id, const OpDescriptor& descriptor, const void* data, size_t bytes,
                               absl::Time deadline) = 0;

  // Waits until `peer` published `op_id`, checks that it made the same call
  // (`descriptor`) with `bytes` bytes, and returns its bytes, valid until
  // Release(op_id). Fails with the transport's error if it failed meanwhile.
  virtual absl::StatusOr<const char*> Await(int peer, uint64_t op_id, const OpDescriptor& descriptor, size_t bytes,
                                            absl::Time deadline) = 0;

  // Tells every peer that this rank runs operation `op_id` another way (the
  // transport's messages), so that a peer waiting for it in a slot fails at
  // once with a mismatch instead of at its deadline. Never waits.
  virtual void Announce(uint64_t op_id, const OpDescriptor& descriptor) = 0;

  // Tells every peer that this rank is done reading what they published under `op_id`.
  virtual void Release(uint64_t op_id) = 0;
};

}  // namespace silk::transport
