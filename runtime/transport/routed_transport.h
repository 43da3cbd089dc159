// A transport that reaches each peer through one of several transports (shared
// memory for the ranks of this node, TCP for the others) and behaves as one:
//
//   - Send/Recv go to the transport that carries `peer`;
//   - errors stay sticky and shared: the first failure of any of them fails the
//     others with the same reason (Abort), so a rank waiting on one path hears
//     of a failure on the other, and its peers on both paths are told;
//   - counters are summed per peer over all of them.
//
// A watcher thread (silk-route) notices a transport that failed on its own (a
// lost connection seen by its progress thread) within a few milliseconds.
#pragma once

#include <memory>
#include <thread>
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
  // Stops watching, then closes the transports, last first.
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
  PeerCounters counters(int peer) const override;
  void BeginPacing(int peer, uint64_t bytes_per_s) override { route(peer).BeginPacing(peer, bytes_per_s); }
  void EndPacing(int peer) override { route(peer).EndPacing(peer); }

 private:
  RoutedTransport(std::vector<std::unique_ptr<Transport>> transports, std::vector<int> routes);
  void Watch();
  // Records `error` as the sticky error (the first one wins) and fails every transport with it.
  void Spread(const absl::Status& error) const;
  absl::Status FirstFailure() const;

  std::vector<std::unique_ptr<Transport>> transports_;
  const std::vector<int> routes_;
  mutable absl::Mutex mu_;
  mutable absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace silk::transport
