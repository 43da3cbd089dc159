#include "runtime/transport/message_transport.h"

#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"

namespace silk::transport {

RequestPtr MessageTransport::Send(int peer, MessageTag tag, const OpDescriptor& descriptor, const void* data,
                                  size_t bytes) {
  constexpr auto kSend = Request::Kind::kSend;
  if (peer < 0 || peer >= size_) {
    return FailedRequest(kSend, peer, tag, bytes,
                   InvalidArgument(absl::StrFormat("send to rank %d outside world of %d", peer, size_)));
  }
  if (absl::Status reach = CheckReach(peer, "send to"); !reach.ok()) return FailedRequest(kSend, peer, tag, bytes, reach);
  if (failed()) return FailedRequest(kSend, peer, tag, bytes, status());
  if (peer == rank_) return SendToSelf(tag, descriptor, data, bytes);
  if (mailbox_.departed(peer)) {
    return FailedRequest(kSend, peer, tag, bytes,
                   PeerLostError(absl::StrFormat("rank %d has shut down its communicator", peer)));
  }
  FrameHeader header;
  header.op_id = tag.op_id;
  header.seq = tag.seq;
  header.total = bytes;
  header.descriptor = descriptor;
  auto request = std::make_shared<Request>(kSend, peer, tag, bytes);
  Enqueue(peer, header, static_cast<const char*>(data), request);
  return request;
}

RequestPtr MessageTransport::Recv(int peer, MessageTag tag, const OpDescriptor& descriptor, void* data,
                                  size_t bytes) {
  constexpr auto kRecv = Request::Kind::kRecv;
  if (peer < 0 || peer >= size_) {
    return FailedRequest(kRecv, peer, tag, bytes,
                   InvalidArgument(absl::StrFormat("receive from rank %d outside world of %d", peer, size_)));
  }
  if (absl::Status reach = CheckReach(peer, "receive from"); !reach.ok()) {
    return FailedRequest(kRecv, peer, tag, bytes, reach);
  }
  auto request = std::make_shared<Request>(kRecv, peer, tag, bytes);
  absl::Status mismatch = mailbox_.Post(peer, tag, descriptor, static_cast<char*>(data), request);
  if (!mismatch.ok()) Fail(mismatch);  // fails the whole job; its sweep completes the request
  return request;
}

RequestPtr MessageTransport::SendToSelf(MessageTag tag, const OpDescriptor& descriptor, const void* data,
                                        size_t bytes) {
  auto request = std::make_shared<Request>(Request::Kind::kSend, rank_, tag, bytes);
  absl::Status problem = mailbox_.DeliverToSelf(tag, descriptor, data, bytes);
  if (!problem.ok()) Fail(problem);
  request->Complete(problem.ok() ? problem : status());
  return request;
}

absl::Status MessageTransport::ClosingStatus() const {
  return failed() ? status() : AbortedError("transport shut down");
}

void MessageTransport::Abort(const absl::Status& reason) {
  Fail(reason.ok() ? AbortedError("aborted by the application") : reason);
}

void MessageTransport::Fail(absl::Status status) {
  if (!mailbox_.RecordFailure(status)) return;
  Log(LogLevel::kWarning, "%s transport failed: %s", name_, status.message());
  FailConnections(status);
  mailbox_.Sweep();
  WakeAfterFailure();
  std::function<void(const absl::Status&)> listener;
  {
    absl::MutexLock lock(&listener_mu_);
    listener = std::move(failure_listener_);
  }
  if (listener) listener(status);
}

void MessageTransport::OnFailure(std::function<void(const absl::Status&)> listener) {
  {
    absl::MutexLock lock(&listener_mu_);
    // Fail() records the error before it takes the listener: either it finds
    // this one, or this call sees the error.
    if (!failed()) {
      failure_listener_ = std::move(listener);
      return;
    }
  }
  listener(status());
}

}  // namespace silk::transport
