// The transport moves bytes between ranks and knows nothing of collectives.
//
// A message is named by the pair (peer, MessageTag). Sends and receives are
// asynchronous: each returns a Request that completes when the bytes are out
// (send) or in place (receive). Messages with different tags may arrive in any
// order; the transport matches them to their receives, buffering what arrives
// early. Every frame carries the OpDescriptor of the call that sent it, and a
// receive whose descriptor differs fails with a message naming both calls.
//
// Errors are sticky: the first failure (a lost connection, a timeout, a
// mismatch, or an abort sent by a peer) fails every pending and later request
// with the same status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/core/types.h"

namespace silk::transport {

struct MessageTag {
  uint64_t op_id = 0;  // the operation's sequence number on its communicator
  uint32_t seq = 0;    // the message's index within the operation
  bool operator==(const MessageTag&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const MessageTag& t) {
    return H::combine(std::move(h), t.op_id, t.seq);
  }
};

// Completion of one send or receive.
class Request {
 public:
  enum class Kind { kSend, kRecv };
  Request(Kind kind, int peer, MessageTag tag, size_t bytes)
      : kind_(kind), peer_(peer), tag_(tag), bytes_(bytes), posted_(absl::Now()) {}

  Kind kind() const { return kind_; }
  int peer() const { return peer_; }
  MessageTag tag() const { return tag_; }
  size_t bytes() const { return bytes_; }

  bool done() const;
  absl::Status status() const;
  // Blocks until the request completes or `deadline` passes. On the deadline
  // it returns DeadlineExceeded naming the peer and tag; the request stays pending.
  absl::Status Wait(absl::Time deadline) const;

  // Called once by the transport that owns the request.
  void Complete(absl::Status status);

  // When it was posted and completed (InfiniteFuture while pending): SILK_TRACE's phases per tier.
  absl::Time posted() const { return posted_; }
  absl::Time completed() const;

 private:
  const Kind kind_;
  const int peer_;
  const MessageTag tag_;
  const size_t bytes_;
  const absl::Time posted_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time completed_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

using RequestPtr = std::shared_ptr<Request>;

// A request that has already failed with `status` (a call refused before it started).
RequestPtr FailedRequest(Request::Kind kind, int peer, MessageTag tag, size_t bytes, absl::Status status);

// Waits for all requests; returns the first error (in completion order of checking).
absl::Status WaitAll(absl::Span<const RequestPtr> requests, absl::Time deadline);

class Transport;
class SharedSlots;
// Request::Wait for a wait that began at `started`, past `deadline` while a
// long link of `transport` is or was down meanwhile (Transport::StretchDeadline);
// a wait that ends anyway during an outage names it (a peer-lost error).
absl::Status Await(const Transport& transport, const Request& request, absl::Time started, absl::Time deadline);
absl::Status AwaitAll(const Transport& transport, absl::Span<const RequestPtr> requests, absl::Time started,
                      absl::Time deadline);

struct PeerCounters {
  uint64_t bytes_sent = 0;      // payload bytes handed to the network
  uint64_t bytes_received = 0;  // payload bytes received
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // `data` must stay valid and unchanged until the request completes.
  virtual RequestPtr Send(int peer, MessageTag tag, const OpDescriptor& descriptor,
                          const void* data, size_t bytes) = 0;
  // `data` must stay valid until the request completes. `bytes` must equal what
  // the peer sends with this tag; otherwise the receive fails.
  virtual RequestPtr Recv(int peer, MessageTag tag, const OpDescriptor& descriptor, void* data,
                          size_t bytes) = 0;

  // The sticky error; OK while healthy.
  virtual absl::Status status() const = 0;
  // Fails the transport with `reason` and tells every reachable peer, whose
  // transports then fail with a status that quotes it. Idempotent.
  virtual void Abort(const absl::Status& reason) = 0;

  virtual PeerCounters counters(int peer) const = 0;

  // Calls `listener` once when the transport first fails (at once if it has
  // failed already), on the thread that failed it: a composite transport
  // spreads one part's failure to the others this way, without polling. One
  // listener; it must not block for long or wait on this transport.
  virtual void OnFailure(std::function<void(const absl::Status&)> listener) = 0;

  // Caps what this rank sends to `peer` at `bytes_per_s` for as long as any
  // caller that began pacing it has not ended (the latest rate applies). For
  // an algorithm that knows how many pairs share a slow link: each paced at
  // its share, they fill the link without overflowing its queue. Transports
  // without a rate control (shared memory) ignore it.
  // Liveness of the long links (across the WAN; link_monitor.h). The
  // deadline of a wait begun at `started` that would end at `deadline`,
  // stretched by how long such a link was down meanwhile (up to the outage
  // tolerance, SILK_WAN_OUTAGE_TOLERANCE), or in an elastic job cut short
  // to the tolerance while an outage lasts; and, when a wait ends anyway, the
  // outage in effect to blame (OK: none). A transport without long links
  // changes nothing.
  virtual absl::Time StretchDeadline(absl::Time started, absl::Time deadline) const { return deadline; }
  virtual absl::Status OutageError() const { return absl::OkStatus(); }

  virtual void BeginPacing(int peer, uint64_t bytes_per_s) {}
  virtual void EndPacing(int peer) {}

  // Memory shared with every peer, for small collectives run by the calling
  // thread (shared_slots.h); null unless all ranks are on one node and share it.
  virtual SharedSlots* shared_slots() { return nullptr; }
  // The same memory shared with this node's ranks only, where the others are
  // on other nodes too (null where none share it): for the node phases of the
  // region-aware collectives.
  virtual SharedSlots* node_slots() { return nullptr; }
};

}  // namespace silk::transport
