// The receive side of every transport's message layer, written once.
//
// A transport moves frames; the mailbox decides where their bytes go. It
// keeps, per peer, the table of messages that are expected (a receive was
// posted) or arriving (a frame came first and is staged), matches the two by
// tag, checks that both sides made the same call, and completes receives. It
// also holds the transport's sticky error and which peers have departed.
//
// The rule it exists for: a frame's payload is written only into the buffer
// posted for it, within the bytes posted, and only after the sender's call was
// checked against the receiver's; everything else goes to staging the mailbox
// owns. A receive that failed (mismatch, transport failure) completes only
// when no transport thread is writing into its message any more, and from
// then on nothing writes to its buffer.
//
// Thread safety: every method may be called from any thread. Transports call
// Arrive / Landed / Abandon from their I/O threads and Post from user threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/core/types.h"
#include "runtime/transport/transport.h"

namespace silk::transport {

// What one frame of a message says about itself.
struct FrameInfo {
  MessageTag tag;
  OpDescriptor descriptor;  // the sender's call
  uint64_t total = 0;       // the whole message's size
  uint64_t offset = 0;      // where this frame's payload goes in it
  uint64_t length = 0;      // this frame's payload bytes
};

class Mailbox {
 public:
  struct Message;
  // Where one frame's payload goes, from Arrive until Landed or Abandon. The
  // landing keeps its message (and staging) alive while bytes go into it.
  struct Landing {
    std::shared_ptr<Message> message;
    char* dest = nullptr;  // `length` writable bytes
    FrameInfo frame;
    bool staged = false;
  };

  Mailbox(int self, int size);
  ~Mailbox();  // Close()
  // Completes whatever is left with the sticky error (or Aborted, "shut
  // down"). The transport's threads must have stopped.
  void Close();

  // ---- the sticky error ----
  // Records the transport's first failure; false if one was recorded before.
  bool RecordFailure(const absl::Status& status);
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  absl::Status status() const;
  // Completes, with the sticky error, every receive that no transport thread
  // is writing into (those complete when their frame lands or is abandoned).
  void Sweep();

  // ---- receives (any thread) ----
  // Posts a receive of request->bytes() into `dest`. If what already arrived
  // shows a different call, returns the mismatch with nothing written and the
  // request still open: the transport fails with it (telling its peers), and
  // the failure's Sweep completes the request.
  absl::Status Post(int peer, MessageTag tag, const OpDescriptor& descriptor, char* dest,
                    const RequestPtr& request);

  // ---- frames (transport threads) ----
  // A frame from `peer` begins: returns where its payload goes, the posted
  // buffer or staging, after checking the frame against the posted receive
  // and the frames before it. On an error nothing may be written; the
  // transport fails with it. After a failure returns the sticky error.
  absl::StatusOr<Landing> Arrive(int peer, const FrameInfo& frame);
  // The payload is in place.
  void Landed(int peer, Landing landing);
  // The payload will never be in place (the transport failed mid-frame).
  void Abandon(int peer, Landing landing);

  // Sends to this rank itself: copies into the posted receive, or stages.
  // Returns a mismatch with nothing written (the caller fails with it).
  absl::Status DeliverToSelf(MessageTag tag, const OpDescriptor& descriptor, const void* data, size_t bytes);

  // ---- peers ----
  // `peer` said goodbye and everything it sent is in: receives posted for
  // messages it never sent fail now, and later ones at once. Returns whether
  // this rank was still waiting on it (a receive, or a part of a message).
  bool Depart(int peer);
  bool departed(int peer) const;

  // Messages expected or arriving from `peer` (for tests and diagnostics).
  size_t pending(int peer) const;

 private:
  // The call each recent operation made, by operation number; old entries go.
  class RecentCalls {
   public:
    const OpDescriptor* Find(uint64_t op_id) const;
    void Remember(uint64_t op_id, const OpDescriptor& call);

   private:
    absl::flat_hash_map<uint64_t, OpDescriptor> calls_;
    std::deque<uint64_t> order_;
  };
  struct Box {
    mutable absl::Mutex mu;
    absl::flat_hash_map<MessageTag, std::shared_ptr<Message>> messages ABSL_GUARDED_BY(mu);
    // Every message of one operation carries the same call, so the peer's
    // call (from any frame) is checked against this rank's (from any posted
    // receive) as soon as both are known, whichever messages they came with:
    // a rank that waits on one message still hears of a mismatch carried by
    // another (a refused call's notice, a neighbour check).
    RecentCalls sent ABSL_GUARDED_BY(mu);    // the peer's calls
    RecentCalls posted ABSL_GUARDED_BY(mu);  // this rank's calls, from receives it posted
    std::atomic<bool> departed{false};
  };
  Box& box(int peer) { return *boxes_[peer]; }
  // Completes the message's receive once nothing writes into it any more.
  void MaybeComplete(Box& box, const std::shared_ptr<Message>& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(box.mu);

  const int self_;
  std::vector<std::unique_ptr<Box>> boxes_;
  mutable absl::Mutex error_mu_;
  absl::Status error_ ABSL_GUARDED_BY(error_mu_);
  std::atomic<bool> failed_{false};
};

}  // namespace silk::transport
