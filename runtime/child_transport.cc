#include "runtime/child_transport.h"

#include <utility>

namespace silk {

ChildTransport::ChildTransport(std::shared_ptr<transport::Transport> root, std::vector<int> members, int rank,
                               uint32_t id)
    : root_(std::move(root)),
      members_(std::move(members)),
      rank_(rank),
      id_bits_(static_cast<uint64_t>(id) << kChildIdShift) {}

int ChildTransport::Root(int peer) const {
  return peer >= 0 && peer < size() ? members_[peer] : -1;
}

transport::MessageTag ChildTransport::Tagged(transport::MessageTag tag) const {
  tag.op_id |= id_bits_;
  return tag;
}

transport::RequestPtr ChildTransport::Send(int peer, transport::MessageTag tag, const OpDescriptor& descriptor,
                                           const void* data, size_t bytes) {
  return root_->Send(Root(peer), Tagged(tag), descriptor, data, bytes);
}

transport::RequestPtr ChildTransport::Recv(int peer, transport::MessageTag tag, const OpDescriptor& descriptor,
                                           void* data, size_t bytes) {
  return root_->Recv(Root(peer), Tagged(tag), descriptor, data, bytes);
}

transport::PeerCounters ChildTransport::counters(int peer) const {
  const int root = Root(peer);
  return root < 0 ? transport::PeerCounters{} : root_->counters(root);
}

void ChildTransport::BeginPacing(int peer, uint64_t bytes_per_s) {
  if (const int root = Root(peer); root >= 0) root_->BeginPacing(root, bytes_per_s);
}

void ChildTransport::EndPacing(int peer) {
  if (const int root = Root(peer); root >= 0) root_->EndPacing(root);
}

}  // namespace silk
