// Point-to-point: a send from one rank and a receive on another, as in NCCL
// (ncclSend/ncclRecv) and MPI. Unlike a collective, only the two ranks take
// part: the call is not queued behind the communicator's collectives and does
// not hold them up, so a pipeline stage can receive activations while its
// gradient all-reduces run. Across regions the bytes take the WAN lanes.
//
// Matching: the n-th send from rank a to rank b with `tag` is the n-th receive
// on b from a with `tag` (MPI's non-overtaking order, per tag); sends and
// receives with different tags or peers are independent. Both sides must agree
// on count and type: a receive that meets a different send fails with both
// calls named, and, like every failure, fails the communicator on every rank.
//
// Completion: a send's Work completes once its bytes are handed to the network
// (its buffer may then be reused), a receive's once the bytes are in place.
// Each waits at most `timeout` (zero: the communicator's SILK_TIMEOUT), then
// fails the communicator naming the peer. A send to this rank itself is
// matched by a receive from itself.
//
// Bad arguments (peer out of range, null buffer, tag outside 0..kMaxTag) return
// InvalidArgument on the calling rank only: nothing is sent, no message
// number is used, and a peer waiting for the call fails at its timeout.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/communicator.h"
#include "runtime/core/types.h"
#include "runtime/engine/work.h"

namespace silk {

inline constexpr int kMaxTag = (1 << 24) - 1;  // as MPI_TAG_UB (MPI promises at least 32767)

struct SendOptions {
  const void* data = nullptr;
  size_t count = 0;
  DataType type = DataType::kFloat32;
  int peer = -1;  // destination rank
  int tag = 0;    // 0 .. kMaxTag
  absl::Duration timeout = absl::ZeroDuration();
};

struct RecvOptions {
  void* data = nullptr;
  size_t count = 0;
  DataType type = DataType::kFloat32;
  int peer = -1;  // source rank
  int tag = 0;
  absl::Duration timeout = absl::ZeroDuration();
};

absl::Status Send(Communicator& comm, const SendOptions& options);
absl::StatusOr<WorkPtr> SendAsync(Communicator& comm, const SendOptions& options);
absl::Status Recv(Communicator& comm, const RecvOptions& options);
absl::StatusOr<WorkPtr> RecvAsync(Communicator& comm, const RecvOptions& options);

// Several sends and receives as one Work (PyTorch's batch_isend_irecv, a
// pipeline's exchange with both neighbours): all are posted at once, in the
// order given, and the Work completes when all have. Every argument is
// checked before any is posted.
struct PointToPointBatch {
  std::vector<SendOptions> sends;
  std::vector<RecvOptions> recvs;
  absl::Duration timeout = absl::ZeroDuration();
};
absl::StatusOr<WorkPtr> SendRecvAsync(Communicator& comm, const PointToPointBatch& batch);

}  // namespace silk
