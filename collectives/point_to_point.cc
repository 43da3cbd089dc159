#include "collectives/point_to_point.h"

#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {
namespace {

// Point-to-point messages are named apart from every collective's: the top
// bit set, then the tag (bits 24..47), then the message's number for its
// (pair, tag) modulo 2^24, which makes each message its own "operation" for
// the mailbox's call check. Bits 48..62 stay clear (a communicator's own bits).
constexpr uint64_t kPointToPointBit = uint64_t{1} << 63;

transport::MessageTag MessageTagFor(int tag, uint32_t number) {
  return transport::MessageTag{
      kPointToPointBit | (static_cast<uint64_t>(tag) << 24) | (number & ((uint32_t{1} << 24) - 1)), 0};
}

// Both sides describe the send: the receiver names the sender as root.
OpDescriptor Describe(DataType type, size_t count, int sender) {
  OpDescriptor d;
  d.kind = CollectiveKind::kSendRecv;
  d.type = type;
  d.root = sender;
  d.count = count;
  return d;
}

absl::StatusOr<size_t> Check(const Communicator& comm, const void* data, size_t count, DataType type, int peer,
                             int tag, const char* what) {
  SILK_RETURN_IF_ERROR(ValidateType(type));
  if (peer < 0 || peer >= comm.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: peer %d is not a rank of this communicator (size %d)", what, peer, comm.size()));
  }
  if (tag < 0 || tag > kMaxTag) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: tag %d is outside 0..%d", what, tag, kMaxTag));
  }
  SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(count, 1, type, what));
  SILK_RETURN_IF_ERROR(ValidateBuffer(data, bytes, what));
  return bytes;
}

char nothing;  // 0-byte messages still need an address

transport::RequestPtr PostSend(Communicator& comm, const SendOptions& o, size_t bytes) {
  const uint32_t number = comm.NextMessageNumber(o.peer, o.tag, /*send=*/true);
  const void* data = bytes > 0 ? o.data : &nothing;
  return comm.transport().Send(o.peer, MessageTagFor(o.tag, number), Describe(o.type, o.count, comm.rank()), data,
                               bytes);
}

transport::RequestPtr PostRecv(Communicator& comm, const RecvOptions& o, size_t bytes) {
  const uint32_t number = comm.NextMessageNumber(o.peer, o.tag, /*send=*/false);
  void* data = bytes > 0 ? o.data : &nothing;
  return comm.transport().Recv(o.peer, MessageTagFor(o.tag, number), Describe(o.type, o.count, o.peer), data, bytes);
}

}  // namespace

absl::StatusOr<WorkPtr> SendAsync(Communicator& comm, const SendOptions& options) {
  SILK_ASSIGN_OR_RETURN(const size_t bytes,
                        Check(comm, options.data, options.count, options.type, options.peer, options.tag, "send"));
  transport::RequestPtr request = PostSend(comm, options, bytes);
  const uint64_t op_id = request->tag().op_id;
  return comm.Track(op_id, Describe(options.type, options.count, comm.rank()), options.timeout, {std::move(request)});
}

absl::StatusOr<WorkPtr> RecvAsync(Communicator& comm, const RecvOptions& options) {
  SILK_ASSIGN_OR_RETURN(const size_t bytes,
                        Check(comm, options.data, options.count, options.type, options.peer, options.tag, "recv"));
  transport::RequestPtr request = PostRecv(comm, options, bytes);
  const uint64_t op_id = request->tag().op_id;
  return comm.Track(op_id, Describe(options.type, options.count, options.peer), options.timeout, {std::move(request)});
}

absl::Status Send(Communicator& comm, const SendOptions& options) {
  SILK_ASSIGN_OR_RETURN(WorkPtr work, SendAsync(comm, options));
  return work->Wait();
}

absl::Status Recv(Communicator& comm, const RecvOptions& options) {
  SILK_ASSIGN_OR_RETURN(WorkPtr work, RecvAsync(comm, options));
  return work->Wait();
}

absl::StatusOr<WorkPtr> SendRecvAsync(Communicator& comm, const PointToPointBatch& batch) {
  std::vector<size_t> send_bytes, recv_bytes;
  uint64_t total = 0;
  for (const SendOptions& o : batch.sends) {
    SILK_ASSIGN_OR_RETURN(send_bytes.emplace_back(), Check(comm, o.data, o.count, o.type, o.peer, o.tag, "send"));
    total += o.count;
  }
  for (const RecvOptions& o : batch.recvs) {
    SILK_ASSIGN_OR_RETURN(recv_bytes.emplace_back(), Check(comm, o.data, o.count, o.type, o.peer, o.tag, "recv"));
    total += o.count;
  }
  std::vector<transport::RequestPtr> requests;
  for (size_t i = 0; i < batch.sends.size(); ++i) requests.push_back(PostSend(comm, batch.sends[i], send_bytes[i]));
  for (size_t i = 0; i < batch.recvs.size(); ++i) requests.push_back(PostRecv(comm, batch.recvs[i], recv_bytes[i]));
  OpDescriptor d = Describe(DataType::kUint8, total, -1);  // names the batch in messages
  const uint64_t op_id = requests.empty() ? kPointToPointBit : requests.front()->tag().op_id;
  return comm.Track(op_id, d, batch.timeout, std::move(requests));
}

}  // namespace silk
