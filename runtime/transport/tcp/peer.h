// Internal state of the TCP transport: one Peer per rank, `lanes` Lanes per
// peer. Locks: a peer's send_mu guards its queue and every SendOp's counters;
// it is not held while calling Fail(). Receives live in the transport's Mailbox.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "runtime/transport/event_loop.h"
#include "runtime/transport/mailbox.h"
#include "runtime/transport/frame.h"
#include "runtime/transport/socket.h"
#include "runtime/transport/tcp/resend_buffer.h"
#include "runtime/transport/transport.h"

namespace silk::transport::tcp {

class ProgressThread;
struct Peer;

struct SendOp {
  RequestPtr request;
  const char* data = nullptr;
  FrameHeader header;  // template: offset and length are set per piece
  uint64_t next_offset = 0;
  uint64_t pieces_total = 1;
  uint64_t pieces_assigned = 0;
  uint64_t pieces_done = 0;
  int pieces_in_flight = 0;
};

struct Lane final : EventLoop::Handler {
  void OnEvents(uint32_t events) override;  // passes them to its progress thread

  Peer* peer = nullptr;
  int index = 0;
  ScopedFd fd;
  ProgressThread* thread = nullptr;
  std::string address;
  bool want_write = false;  // guarded by peer->send_mu; mirrors EPOLLOUT
  std::atomic<uint64_t> payload_bytes_sent{0};
  bool heartbeat_due = false;  // guarded by peer->send_mu: send one when nothing else is queued

  // Sending (progress thread only).
  std::shared_ptr<SendOp> op;
  FrameHeader out_header;
  uint64_t out_done = 0;    // bytes of header + payload written
  std::string out_control;  // payload of a control frame
  bool goodbye_sent = false;

  // Receiving (progress thread only).
  FrameHeader in_header;
  uint64_t in_header_got = 0;
  bool in_payload = false;
  uint64_t in_payload_got = 0;
  std::optional<Mailbox::Landing> in_landing;  // a data frame's payload goes there
  char* in_dest = nullptr;                     // the landing's bytes, or in_control's
  std::string in_control;
  bool goodbye_received = false;
  // The peer's side ended (EOF) after its goodbye while this side's answer was
  // still to be written: no more reading; the lane closes once the answer is out.
  bool peer_ended = false;  // written by the progress thread under peer->send_mu
  bool closed = false;

  // Lanes to monitored peers carry a byte stream that outlives its TCP
  // connection: after a cut the connection is replaced (ProgressThread::
  // Resume) and each side resends what the other has not received. Progress
  // thread only, but for `ack_due` (under peer->send_mu).
  ResendBuffer resend;
  uint64_t received = 0;        // stream bytes read
  uint64_t received_acked = 0;  // `received` as the last ack told the peer
  bool ack_due = false;
  // On a replacement connection each side first sends a resume frame with its
  // `received` (outside the stream), and writes nothing of the stream before
  // it has read the peer's.
  std::string resume_out;  // this side's resume frame, while not all written
  size_t resume_out_done = 0;
  bool awaiting_resume = false;
  FrameHeader resume_in;
  size_t resume_in_got = 0;
  // Connections replaced but not closed yet: closing one before the peer has
  // moved to the new connection would read there as a crash (EOF).
  std::vector<ScopedFd> replaced;
  std::atomic<bool> reconnecting{false};  // a thread of the transport is dialling a replacement
  std::atomic<int64_t> redialed_ns{0};    // when it last handed one over (unix ns)
  std::atomic<int> resumed{0};            // replacements completed (logs, tests)
};

struct Peer {
  int rank = 0;
  bool monitored = false;  // across a long link (LinkMonitor): heartbeats, liveness; fixed by Connect
  std::atomic<int64_t> last_sent_ns{0};  // when a lane last wrote to it (monitored peers only)
  std::vector<std::unique_ptr<Lane>> lanes;

  absl::Mutex send_mu;
  std::deque<std::shared_ptr<SendOp>> queue ABSL_GUARDED_BY(send_mu);
  uint64_t round_robin ABSL_GUARDED_BY(send_mu) = 0;

  absl::Mutex pacing_mu;
  int pacing_holders ABSL_GUARDED_BY(pacing_mu) = 0;  // BeginPacing calls not yet ended
  uint64_t pacing_per_lane ABSL_GUARDED_BY(pacing_mu) = 0;  // for replacement connections

  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
};

}  // namespace silk::transport::tcp
