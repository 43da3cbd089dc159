// A split communicator's transport: a view of its root communicator's
// transport restricted to the members, with ranks renumbered and every
// message tagged with the communicator's id, so that it shares the root's
// connections (no new handshake) while its messages never meet those of the
// root or of another split communicator.
//
// Message numbers: bits 48..62 of MessageTag::op_id hold the id (the root's
// operations, and point-to-point numbering, stay below bit 48).
//
// The connections, and so failures, are shared: a failure here (a mismatch,
// a timeout, an abort) fails the root transport and every communicator split
// from it, as a broken connection would.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/transport/transport.h"

namespace silk {

inline constexpr int kChildIdShift = 48;
inline constexpr uint32_t kMaxChildId = (1u << 15) - 1;

class ChildTransport : public transport::Transport {
 public:
  // `members`: ranks of `root`, in this communicator's order; `rank`: this
  // rank's position among them; `id` in 1..kMaxChildId.
  ChildTransport(std::shared_ptr<transport::Transport> root, std::vector<int> members, int rank, uint32_t id);

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }
  transport::RequestPtr Send(int peer, transport::MessageTag tag, const OpDescriptor& descriptor, const void* data,
                             size_t bytes) override;
  transport::RequestPtr Recv(int peer, transport::MessageTag tag, const OpDescriptor& descriptor, void* data,
                             size_t bytes) override;
  absl::Status status() const override { return root_->status(); }
  void Abort(const absl::Status& reason) override { root_->Abort(reason); }
  transport::PeerCounters counters(int peer) const override;
  // The root has one listener (its owner's); a child is told of failures by
  // its operations, which fail with the root's sticky error.
  void OnFailure(std::function<void(const absl::Status&)> listener) override {}
  absl::Time StretchDeadline(absl::Time started, absl::Time deadline) const override {
    return root_->StretchDeadline(started, deadline);
  }
  absl::Status OutageError() const override { return root_->OutageError(); }
  void BeginPacing(int peer, uint64_t bytes_per_s) override;
  void EndPacing(int peer) override;

 private:
  // The root's rank of `peer`, or -1 when out of range (the root then refuses it).
  int Root(int peer) const;
  transport::MessageTag Tagged(transport::MessageTag tag) const;

  const std::shared_ptr<transport::Transport> root_;
  const std::vector<int> members_;
  const int rank_;
  const uint64_t id_bits_;
};

}  // namespace silk
