// Joining two ranks of one node.
//
// Each rank listens on a Unix-domain socket in the abstract namespace named
// after the job and its rank (no file to clean up; network namespaces keep
// separate nodes of a virtual cluster apart). The higher rank of a pair
// connects, both prove they hold the job token (the TCP handshake, over this
// socket), then the higher rank creates the pair's segment and passes it with
// SCM_RIGHTS; the lower rank maps it and says so. Afterwards the socket
// carries wake-ups, aborts and goodbye, and its end is how each side learns at
// once that the other process is gone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/transport/shm/segment.h"
#include "runtime/transport/handshake.h"

namespace silk::transport::shm {

// The abstract socket name of `rank` in job `job_id`.
std::string SocketName(uint64_t job_id, int rank);

// Listens (non-blocking) on the abstract socket `name`.
absl::StatusOr<ScopedFd> ListenLocal(const std::string& name);
// Connects to the abstract socket `name`, retrying until someone listens there or `deadline`.
absl::StatusOr<ScopedFd> ConnectLocal(const std::string& name, absl::Time deadline);

// A joined pair, seen from one side.
struct Link {
  int peer = -1;
  pid_t pid = 0;     // the peer's process, for messages
  ScopedFd socket;   // non-blocking
  Segment segment;   // mapped; its descriptor already closed
};

// The higher rank's side: connects to `peer`, authenticates with `params`,
// creates a segment with rings of `ring_bytes` and hands it over.
absl::StatusOr<Link> ConnectLink(uint64_t job_id, int peer, const HandshakeParams& params, uint64_t ring_bytes,
                                 absl::Time deadline);

// The lower rank's side, for a connection from `peer` that passed the
// handshake (acceptor.h): takes the segment, maps it and says so.
absl::StatusOr<Link> AcceptLink(ScopedFd socket, int peer, absl::Time deadline);

// The process at the other end of a Unix socket (0 when unknown).
pid_t PeerPid(int socket);

}  // namespace silk::transport::shm
