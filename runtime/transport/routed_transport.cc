#include "runtime/transport/routed_transport.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace silk::transport {

absl::StatusOr<std::unique_ptr<RoutedTransport>> RoutedTransport::Create(
    std::vector<std::unique_ptr<Transport>> transports, std::vector<int> routes) {
  if (transports.empty()) return absl::InvalidArgumentError("a routed transport needs at least one transport");
  const int rank = transports.front()->rank(), size = transports.front()->size();
  for (const auto& t : transports) {
    if (t == nullptr || t->rank() != rank || t->size() != size) {
      return absl::InvalidArgumentError(
          absl::StrFormat("the routed transports must all be rank %d of a world of %d", rank, size));
    }
  }
  if (static_cast<int>(routes.size()) != size) {
    return absl::InvalidArgumentError(absl::StrFormat("%d routes for a world of %d", routes.size(), size));
  }
  for (int peer = 0; peer < size; ++peer) {
    if (routes[peer] < 0 || routes[peer] >= static_cast<int>(transports.size())) {
      return absl::InvalidArgumentError(absl::StrFormat("rank %d is routed to transport %d of %d", peer, routes[peer],
                                                        transports.size()));
    }
  }
  std::unique_ptr<RoutedTransport> routed(new RoutedTransport(std::move(transports), std::move(routes)));
  for (const auto& t : routed->transports_) {
    t->OnFailure([r = routed.get()](const absl::Status& error) { r->Spread(error); });
  }
  return routed;
}

RoutedTransport::RoutedTransport(std::vector<std::unique_ptr<Transport>> transports, std::vector<int> routes)
    : transports_(std::move(transports)), routes_(std::move(routes)) {}

RoutedTransport::~RoutedTransport() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return spreading_ == 0; };
    mu_.Await(absl::Condition(&idle));
  }
  while (!transports_.empty()) transports_.pop_back();
}

void RoutedTransport::Spread(const absl::Status& error) {
  std::function<void(const absl::Status&)> listener;
  absl::Status first;
  {
    absl::MutexLock lock(&mu_);
    if (spread_ || stopping_) return;
    Latch(error);
    first = error_;
    spread_ = true;
    listener = std::move(listener_);
    spreading_++;
  }
  // The transport that failed ignores this (its error is sticky); the others
  // fail with the same reason and tell their peers.
  for (const auto& t : transports_) t->Abort(first);
  if (listener) listener(first);
  absl::MutexLock lock(&mu_);
  spreading_--;
}

void RoutedTransport::Latch(const absl::Status& error) const {
  if (!error_.ok()) return;
  error_ = error;
  failed_.store(true, std::memory_order_release);
}

void RoutedTransport::OnFailure(std::function<void(const absl::Status&)> listener) {
  absl::Status error;
  {
    absl::MutexLock lock(&mu_);
    if (!spread_) {
      listener_ = std::move(listener);
      return;
    }
    error = error_;
  }
  listener(error);
}

RequestPtr RoutedTransport::Send(int peer, MessageTag tag, const OpDescriptor& descriptor, const void* data,
                                 size_t bytes) {
  if (peer < 0 || peer >= size()) {
    return FailedRequest(Request::Kind::kSend, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat("send to rank %d outside world of %d", peer, size())));
  }
  if (failed_.load(std::memory_order_acquire)) return FailedRequest(Request::Kind::kSend, peer, tag, bytes, status());
  return route(peer).Send(peer, tag, descriptor, data, bytes);
}

RequestPtr RoutedTransport::Recv(int peer, MessageTag tag, const OpDescriptor& descriptor, void* data, size_t bytes) {
  if (peer < 0 || peer >= size()) {
    return FailedRequest(Request::Kind::kRecv, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat("receive from rank %d outside world of %d", peer, size())));
  }
  if (failed_.load(std::memory_order_acquire)) return FailedRequest(Request::Kind::kRecv, peer, tag, bytes, status());
  return route(peer).Recv(peer, tag, descriptor, data, bytes);
}

absl::Status RoutedTransport::status() const {
  if (failed_.load(std::memory_order_acquire)) {
    absl::MutexLock lock(&mu_);
    return error_;
  }
  // A part that failed reaches Spread once its receives are swept: in between,
  // the first part error seen is latched as the answer, so this status and
  // every later call agree even when another part then fails for its own
  // reason (a peer's relayed abort, say). Parts are asked outside mu_: a part
  // may hold its own lock while it calls Spread.
  for (const auto& t : transports_) {
    if (absl::Status s = t->status(); !s.ok()) {
      absl::MutexLock lock(&mu_);
      Latch(s);
      return error_;
    }
  }
  return absl::OkStatus();
}

void RoutedTransport::Abort(const absl::Status& reason) {
  Spread(reason.ok() ? absl::AbortedError("aborted by the application") : reason);
}

absl::Time RoutedTransport::StretchDeadline(absl::Time started, absl::Time deadline) const {
  // A path may lengthen a wait (an outage being ridden out) or, in an elastic
  // job, end it early (an outage past its tolerance): the earliest end wins
  // over every lengthening, which wins over the wait's own deadline.
  absl::Time stretched = deadline, ended = absl::InfiniteFuture();
  for (const auto& t : transports_) {
    const absl::Time mine = t->StretchDeadline(started, deadline);
    if (mine < deadline) ended = std::min(ended, mine);
    stretched = std::max(stretched, mine);
  }
  return ended != absl::InfiniteFuture() ? ended : stretched;
}

absl::Status RoutedTransport::OutageError() const {
  for (const auto& t : transports_) {
    if (absl::Status outage = t->OutageError(); !outage.ok()) return outage;
  }
  return absl::OkStatus();
}

PeerCounters RoutedTransport::counters(int peer) const {
  PeerCounters sum;
  for (const auto& t : transports_) {
    PeerCounters c = t->counters(peer);
    sum.bytes_sent += c.bytes_sent;
    sum.bytes_received += c.bytes_received;
  }
  return sum;
}

SharedSlots* RoutedTransport::shared_slots() {
  for (int route : routes_) {
    if (route != routes_.front()) return nullptr;
  }
  return transports_[routes_.front()]->shared_slots();
}

SharedSlots* RoutedTransport::node_slots() {
  for (const auto& t : transports_) {
    if (SharedSlots* slots = t->node_slots(); slots != nullptr) return slots;
  }
  return nullptr;
}

}  // namespace silk::transport
