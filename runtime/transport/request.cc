#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/transport/transport.h"

namespace silk::transport {

bool Request::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

absl::Status Request::status() const {
  absl::MutexLock lock(&mu_);
  return done_ ? status_ : absl::UnavailableError("request still pending");
}

absl::Status Request::Wait(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto is_done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&is_done), deadline)) {
    return TimeoutError(absl::StrFormat(
        "timed out waiting to %s %d bytes %s rank %d (operation %d, message %d)",
        kind_ == Kind::kSend ? "send" : "receive", bytes_, kind_ == Kind::kSend ? "to" : "from", peer_,
        tag_.op_id, tag_.seq));
  }
  return status_;
}

absl::Time Request::completed() const {
  absl::MutexLock lock(&mu_);
  return completed_;
}

void Request::Complete(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (done_) return;
  done_ = true;
  completed_ = absl::Now();
  status_ = std::move(status);
}

RequestPtr FailedRequest(Request::Kind kind, int peer, MessageTag tag, size_t bytes, absl::Status status) {
  auto request = std::make_shared<Request>(kind, peer, tag, bytes);
  request->Complete(std::move(status));
  return request;
}

namespace {
// How often a long wait looks again at the links (Await).
constexpr absl::Duration kLinkRecheck = absl::Seconds(1);
}  // namespace

absl::Status WaitAll(absl::Span<const RequestPtr> requests, absl::Time deadline) {
  absl::Status first;
  for (const RequestPtr& request : requests) {
    absl::Status s = request->Wait(deadline);
    if (!s.ok() && first.ok()) first = s;
    if (absl::IsDeadlineExceeded(s)) return s;
  }
  return first;
}

absl::Status Await(const Transport& transport, const Request& request, absl::Time started, absl::Time deadline) {
  while (true) {
    // The links' state moves the limit (an outage lengthens it, or in an
    // elastic job ends it at the tolerance): look again now and then.
    const absl::Time limit = transport.StretchDeadline(started, deadline);
    absl::Status status = request.Wait(std::min(limit, absl::Now() + kLinkRecheck));
    if (!absl::IsDeadlineExceeded(status) || request.done()) return status;
    if (absl::Now() < transport.StretchDeadline(started, deadline)) continue;
    absl::Status outage = transport.OutageError();
    if (outage.ok()) return status;
    return PeerLostError(absl::StrFormat("%s; %s", outage.message(), status.message()));
  }
}

absl::Status AwaitAll(const Transport& transport, absl::Span<const RequestPtr> requests, absl::Time started,
                      absl::Time deadline) {
  absl::Status first;
  for (const RequestPtr& request : requests) {
    absl::Status s = Await(transport, *request, started, deadline);
    if (!s.ok() && first.ok()) first = s;
    if (!s.ok() && !request->done()) return s;  // gave up on it: the rest would wait as long
  }
  return first;
}

}  // namespace silk::transport
