// What every Silk transport does the same way, written once: the checks on a
// send or receive, receives through the Mailbox, messages to this rank
// itself, departed peers, the sticky error, Abort. A backend (TCP lanes,
// shared-memory rings) supplies only how a send leaves, which peers it
// reaches, and what a failure does to its connections (tell the peers, end
// its queued sends, wake its I/O thread).
#pragma once

#include <cstddef>

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "runtime/transport/mailbox.h"
#include "runtime/transport/frame.h"
#include "runtime/transport/transport.h"

namespace silk::transport {

class MessageTransport : public Transport {
 public:
  int rank() const final { return rank_; }
  int size() const final { return size_; }
  RequestPtr Send(int peer, MessageTag tag, const OpDescriptor& descriptor, const void* data, size_t bytes) final;
  RequestPtr Recv(int peer, MessageTag tag, const OpDescriptor& descriptor, void* data, size_t bytes) final;
  absl::Status status() const final { return mailbox_.status(); }
  void Abort(const absl::Status& reason) final;
  void OnFailure(std::function<void(const absl::Status&)> listener) final;

 protected:
  MessageTransport(int rank, int size, const char* name) : rank_(rank), size_(size), name_(name), mailbox_(rank, size) {}

  // OK if this transport carries messages between this rank and `peer` (in the world).
  virtual absl::Status CheckReach(int peer, const char* what) const { return absl::OkStatus(); }
  // Queues a send to another rank (not departed, transport healthy when
  // called): `header` has every field but offset and length; `request`
  // completes once the bytes are out, or with the sticky error.
  virtual void Enqueue(int peer, const FrameHeader& header, const char* data, RequestPtr request) = 0;
  // The first failure was recorded: tell the peers if the backend can, and
  // fail the queued sends nobody is touching. Receives are swept after it.
  virtual void FailConnections(const absl::Status& status) = 0;
  // After the sweep: let the I/O threads release what they hold and close.
  virtual void WakeAfterFailure() = 0;

  // Records the first error; then FailConnections, the receives' sweep, WakeAfterFailure.
  void Fail(absl::Status status);
  bool failed() const { return mailbox_.failed(); }
  // What requests still open at shutdown complete with.
  absl::Status ClosingStatus() const;

  // Appends `op` to `peer`'s send queue and runs `queued()` (still under the
  // queue's lock), or completes it with the sticky error if the transport has
  // failed. Checked under that lock, so a failure's sweep (FailQueuedSends)
  // cannot miss it.
  template <typename Peer, typename Op, typename Queued>
  void QueueSend(Peer& peer, std::shared_ptr<Op> op, Queued queued) {
    absl::MutexLock lock(&peer.send_mu);
    if (failed()) {
      op->request->Complete(status());
      return;
    }
    peer.queue.push_back(std::move(op));
    queued();
  }

  // Completes with `status`, and drops, the queued sends of every peer (each
  // with a `send_mu` and a `queue`) that `idle(op)` says no I/O thread is
  // touching; the I/O thread completes the others when it lets go of them.
  template <typename Peers, typename Idle>
  static void FailQueuedSends(Peers& peers, const absl::Status& status, Idle idle) {
    for (auto& peer : peers) {
      absl::MutexLock lock(&peer->send_mu);
      for (auto& op : peer->queue) {
        if (idle(*op)) op->request->Complete(status);
      }
      peer->queue.clear();
    }
  }

  const int rank_;
  const int size_;
  const char* const name_;  // "tcp", "shared-memory": for logs
  Mailbox mailbox_;         // receives, the sticky error, departed peers

 private:
  absl::Mutex listener_mu_;
  std::function<void(const absl::Status&)> failure_listener_ ABSL_GUARDED_BY(listener_mu_);

  RequestPtr SendToSelf(MessageTag tag, const OpDescriptor& descriptor, const void* data, size_t bytes);
};

}  // namespace silk::transport
