#include "runtime/transport/routed_transport.h"

#include <pthread.h>

#include "absl/strings/str_format.h"

namespace silk::transport {
namespace {

constexpr absl::Duration kWatchInterval = absl::Milliseconds(10);

RequestPtr FailedRequest(Request::Kind kind, int peer, MessageTag tag, size_t bytes, absl::Status status) {
  auto request = std::make_shared<Request>(kind, peer, tag, bytes);
  request->Complete(std::move(status));
  return request;
}

}  // namespace

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
  routed->watcher_ = std::thread([t = routed.get()] { t->Watch(); });
  return routed;
}

RoutedTransport::RoutedTransport(std::vector<std::unique_ptr<Transport>> transports, std::vector<int> routes)
    : transports_(std::move(transports)), routes_(std::move(routes)) {}

RoutedTransport::~RoutedTransport() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
  while (!transports_.empty()) transports_.pop_back();
}

void RoutedTransport::Watch() {
  pthread_setname_np(pthread_self(), "silk-route");
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), kWatchInterval)) return;
      if (!error_.ok()) return;  // spread already: nothing more to watch
    }
    absl::Status failure = FirstFailure();
    if (!failure.ok()) Spread(failure);
  }
}

absl::Status RoutedTransport::FirstFailure() const {
  for (const auto& t : transports_) {
    absl::Status s = t->status();
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void RoutedTransport::Spread(const absl::Status& error) const {
  {
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return;
    error_ = error;
  }
  // The transport that failed ignores this (its error is sticky); the others
  // fail with the same reason and tell their peers.
  for (const auto& t : transports_) t->Abort(error);
}

RequestPtr RoutedTransport::Send(int peer, MessageTag tag, const OpDescriptor& descriptor, const void* data,
                                 size_t bytes) {
  if (peer < 0 || peer >= size()) {
    return FailedRequest(Request::Kind::kSend, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat("send to rank %d outside world of %d", peer, size())));
  }
  return route(peer).Send(peer, tag, descriptor, data, bytes);
}

RequestPtr RoutedTransport::Recv(int peer, MessageTag tag, const OpDescriptor& descriptor, void* data, size_t bytes) {
  if (peer < 0 || peer >= size()) {
    return FailedRequest(Request::Kind::kRecv, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat("receive from rank %d outside world of %d", peer, size())));
  }
  return route(peer).Recv(peer, tag, descriptor, data, bytes);
}

absl::Status RoutedTransport::status() const {
  {
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return error_;
  }
  absl::Status failure = FirstFailure();
  if (failure.ok()) return failure;
  Spread(failure);
  absl::MutexLock lock(&mu_);
  return error_;
}

void RoutedTransport::Abort(const absl::Status& reason) {
  Spread(reason.ok() ? absl::AbortedError("aborted by the application") : reason);
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

}  // namespace silk::transport
