// Internal state of the shared-memory transport: one Peer per rank of the
// world; only the ranks of this node have a link. Locks as on TCP: a peer's
// send_mu guards its queue and its SendOps, and is not held while calling
// Fail(). Receives live in the transport's Mailbox. Fields marked "progress thread" are touched by
// the silk-shm thread only (and by set-up and the destructor, when it is not
// running).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "runtime/transport/event_loop.h"
#include "runtime/transport/shm/segment.h"
#include "runtime/transport/transport.h"

namespace silk::transport::shm {

struct SendOp {
  RequestPtr request;
  const char* data = nullptr;
  FrameHeader header;  // template: offset and length are set per frame
  uint64_t next_offset = 0;
  bool started = false;  // a first frame is out (a 0-byte message has exactly one)
  bool copying = false;  // the progress thread is reading `data` right now
};

struct Peer {
  int rank = 0;
  bool local = false;  // on this node (this rank itself included)
  bool linked = false;  // joined by a segment and a socket (set-up only)
  pid_t pid = 0;

  // Progress thread.
  ScopedFd socket;
  CallbackHandler socket_events;  // reads `socket` on the progress loop
  Segment segment;
  RingWriter out;
  RingReader in;
  std::string control_in;         // bytes read from the socket, not yet parsed
  bool send_blocked = false;      // the next frame does not fit in `out`
  uint64_t blocked_payload = 0;
  bool goodbye_sent = false;
  bool goodbye_received = false;
  // The socket is done: nothing more to or from this peer. Set by the progress
  // thread; read by the thread that fails the transport too.
  std::atomic<bool> closed{false};
  // Held while writing to the socket: the progress thread (wake-ups, goodbye)
  // and a failing user thread (abort) may both write.
  absl::Mutex write_mu;

  absl::Mutex send_mu;
  std::deque<std::shared_ptr<SendOp>> queue ABSL_GUARDED_BY(send_mu);

  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
};

}  // namespace silk::transport::shm
