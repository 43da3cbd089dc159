// A transport that reaches each peer through one of several transports (shared
// memory for the ranks of this node, TCP for the others) and behaves as one:
//
//   - Send/Recv go to the transport that carries `peer`;
//   - errors stay sticky and shared: the first failure of any of them fails the
//     others with the same reason (Abort), so a rank waiting on one path hears
//     of a failure on the other, and its peers on both paths are told; once
//     failed, every new call fails with that first error, whatever path it
//     would have taken;
//   - counters are summed per peer over all of them.
//
// A transport that fails on its own (a lost connection seen by its progress
// thread) spreads its error to the others as it fails (OnFailure).
#pragma once

#include <atomic>
#include <memory>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/transport/transport.h"

namespace silk::transport {

class RoutedTransport : public Transport {
 public:
  // `routes[peer]` is the index in `transports` of the one that carries
  // `peer` (this rank included); every transport has the same rank and size.
  static absl::StatusOr<std::unique_ptr<RoutedTransport>> Create(std::vector<std::unique_ptr<Transport>> transports,
                                                                 std::vector<int> routes);
  // Stops spreading failures, then closes the transports, last first.
  ~RoutedTransport() override;

  // The transport that carries `peer`.
  Transport& route(int peer) const { return *transports_[routes_[peer]]; }

  int rank() const override { return transports_.front()->rank(); }
  int size() const override { return transports_.front()->size(); }
  RequestPtr Send(int peer, MessageTag tag, const OpDescriptor& descriptor, const void* data,
                  size_t bytes) override;
  RequestPtr Recv(int peer, MessageTag tag, const OpDescriptor& descriptor, void* data, size_t bytes) override;
  absl::Status status() const override;
  void Abort(const absl::Status& reason) override;
  void OnFailure(std::function<void(const absl::Status&)> listener) override;
  PeerCounters counters(int peer) const override;
  absl::Time StretchDeadline(absl::Time started, absl::Time deadline) const override;
  absl::Status OutageError() const override;
  void BeginPacing(int peer, uint64_t bytes_per_s) override { route(peer).BeginPacing(peer, bytes_per_s); }
  void EndPacing(int peer) override { route(peer).EndPacing(peer); }
  // The slots of the transport that carries every peer, if one does.
  SharedSlots* shared_slots() override;
  // The slots of the transport that carries this node's ranks, if it has them.
  SharedSlots* node_slots() override;

 private:
  RoutedTransport(std::vector<std::unique_ptr<Transport>> transports, std::vector<int> routes);
  // Records `error` as the sticky error (the first one wins), fails every
  // transport with it, and tells this transport's own listener.
  void Spread(const absl::Status& error);
  // Keeps `error` as the sticky error unless one is kept already.
  void Latch(const absl::Status& error) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::vector<std::unique_ptr<Transport>> transports_;
  const std::vector<int> routes_;
  mutable absl::Mutex mu_;
  // The first error seen (by status() or Spread); every later call fails with it.
  mutable absl::Status error_ ABSL_GUARDED_BY(mu_);
  mutable std::atomic<bool> failed_{false};  // error_ is set: new calls fail without reaching a part
  bool spread_ ABSL_GUARDED_BY(mu_) = false;  // the parts were aborted with error_
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int spreading_ ABSL_GUARDED_BY(mu_) = 0;  // Spread calls still touching transports_
  std::function<void(const absl::Status&)> listener_ ABSL_GUARDED_BY(mu_);
};

}  // namespace silk::transport
