#include "runtime/transport/tcp/progress_thread.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"
#include "runtime/transport/control.h"
#include "runtime/transport/tcp/tcp_transport.h"

namespace silk::transport::tcp {
namespace {

constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;
constexpr absl::Duration kLostConnectionGrace = absl::Milliseconds(200);
constexpr int kPiecesPerWakeup = 4;

}  // namespace

void Lane::OnEvents(uint32_t events) { thread->HandleEvents(this, events); }

ProgressThread::ProgressThread(TcpTransport* transport, int index)
    : transport_(transport), index_(index), loop_(absl::StrFormat("silk-progress%d", index)) {}

ProgressThread::~ProgressThread() { loop_.Stop(); }

absl::Status ProgressThread::Start() {
  loop_.AddTick([this] { return Tick(); });
  return loop_.Start([this](const absl::Status& error) { transport_->Fail(error); });
}

absl::Status ProgressThread::Register(Lane* lane) {
  {
    absl::MutexLock lock(&lanes_mu_);
    lanes_.push_back(lane);
  }
  absl::Status added;
  {
    // A send may already have asked for write interest (want_write) before the
    // lane was in the epoll set; register with it so that wake-up is not lost.
    absl::MutexLock lock(&lane->peer->send_mu);
    added = loop_.Watch(lane->fd.get(), kReadEvents | (lane->want_write ? uint32_t{EPOLLOUT} : 0u), lane);
  }
  if (!added.ok()) {
    return Prefixed(added, absl::StrFormat("rank %d lane %d: ", lane->peer->rank, lane->index));
  }
  Wake();  // the loop re-checks failure/shutdown state for the new lane
  return absl::OkStatus();
}

void ProgressThread::SetWriteInterest(Lane* lane, bool on) {
  lane->want_write = on;
  if (lane->closed) return;
  loop_.Rewatch(lane->fd.get(), (lane->peer_ended ? 0u : kReadEvents) | (on ? uint32_t{EPOLLOUT} : 0u), lane)
      .IgnoreError();
}

void ProgressThread::Wake() { loop_.Wake(); }

void ProgressThread::Stop(absl::Time deadline) {
  saying_goodbye_ = true;
  std::vector<Lane*> lanes;
  {
    absl::MutexLock lock(&lanes_mu_);
    lanes = lanes_;
  }
  for (Lane* lane : lanes) {
    absl::MutexLock lock(&lane->peer->send_mu);
    if (!lane->closed) SetWriteInterest(lane, true);
  }
  Wake();
  // The loop closes each lane when the peer's side ends; wait for that, bounded.
  while (absl::Now() < deadline) {
    bool all_closed = true;
    for (Lane* lane : lanes) {
      absl::MutexLock lock(&lane->peer->send_mu);
      all_closed = all_closed && lane->closed;
    }
    if (all_closed) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  loop_.Stop();
}

void ProgressThread::HandleEvents(Lane* lane, uint32_t events) {
  if (lane->closed) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) HandleReadable(lane);
  if (!lane->closed && (events & EPOLLOUT)) HandleWritable(lane);
}

int ProgressThread::Tick() {
  if (transport_->failed() && !released_after_failure_) {
    released_after_failure_ = true;
    std::vector<Lane*> lanes;
    {
      absl::MutexLock lock(&lanes_mu_);
      lanes = lanes_;
    }
    // Every lane that can still carry the reason sends it before any lane
    // closes, so the peers learn the cause rather than just seeing EOF.
    for (Lane* lane : lanes) ReleaseAfterFailure(lane);
    for (Lane* lane : lanes) CloseLane(lane);
  }
  if (!deferred_failure_.ok() && absl::Now() >= deferred_deadline_) {
    transport_->Fail(deferred_failure_);  // no abort explained the lost connection
    deferred_failure_ = absl::OkStatus();
  }
  const absl::Time now = absl::Now();
  if (now >= next_liveness_check_ && !transport_->failed()) {
    next_liveness_check_ = now + transport_->options_.heartbeat / 4;
    if (index_ == 0) {
      transport_->monitor_->Check(now);
      transport_->RedialSilentPeers();
    }
    QueueHeartbeats(now);
  }
  // Failures and shutdown wake the loop; the bound is a safety net, shorter
  // while a lost connection waits for its explanation.
  return deferred_failure_.ok() ? 100 : 20;
}

// Each monitored peer's first lane on this thread carries a heartbeat when
// nothing went to that peer for a heartbeat interval.
void ProgressThread::QueueHeartbeats(absl::Time now) {
  std::vector<Lane*> lanes;
  {
    absl::MutexLock lock(&lanes_mu_);
    lanes = lanes_;
  }
  const int64_t quiet_since = absl::ToUnixNanos(now - transport_->options_.heartbeat);
  for (Lane* lane : lanes) {
    Peer* peer = lane->peer;
    if (peer->monitored && lane->received > lane->received_acked) QueueAck(lane);
    if (!peer->monitored || lane->index != 0 || peer->last_sent_ns.load(std::memory_order_relaxed) > quiet_since) {
      continue;
    }
    absl::MutexLock lock(&peer->send_mu);
    if (lane->closed || lane->heartbeat_due || saying_goodbye_) continue;
    lane->heartbeat_due = true;
    SetWriteInterest(lane, true);
  }
}

// ---- sending ----

bool ProgressThread::StartPiece(Lane* lane) {
  Peer* peer = lane->peer;
  absl::MutexLock lock(&peer->send_mu);
  if (transport_->failed()) {
    SetWriteInterest(lane, false);
    return false;
  }
  if (peer->monitored && StartAck(lane)) return true;
  if (!peer->queue.empty()) {
    std::shared_ptr<SendOp> op = peer->queue.front();
    uint64_t total = op->header.total;
    uint64_t length = std::min<uint64_t>(transport_->options_.stripe_bytes, total - op->next_offset);
    lane->out_header = op->header;
    lane->out_header.offset = op->next_offset;
    lane->out_header.length = length;
    op->next_offset += length;
    op->pieces_assigned++;
    op->pieces_in_flight++;
    if (op->pieces_assigned == op->pieces_total) peer->queue.pop_front();
    lane->op = std::move(op);
    lane->out_done = 0;
    return true;
  }
  if (lane->heartbeat_due && !saying_goodbye_ && !lane->goodbye_received) {
    lane->heartbeat_due = false;
    lane->out_header = FrameHeader{};
    lane->out_header.type = FrameType::kHeartbeat;
    lane->out_control = "h";  // a control frame is written while out_control holds its payload
    lane->out_header.length = lane->out_control.size();
    lane->out_done = 0;
    return true;
  }
  if ((saying_goodbye_ || lane->goodbye_received) && !lane->goodbye_sent) {
    lane->out_header = FrameHeader{};
    lane->out_header.type = FrameType::kGoodbye;
    lane->out_control = "goodbye";
    lane->out_header.length = lane->out_control.size();
    lane->out_done = 0;
    return true;
  }
  SetWriteInterest(lane, false);
  return false;
}

void ProgressThread::HandleWritable(Lane* lane) {
  // A lane takes a few pieces per wake-up, then lets the loop serve its other
  // lanes (it stays writable, so epoll returns to it at once): lanes share the
  // stripes fairly even when a socket could swallow the whole message.
  int pieces_started = 0;
  while (!lane->closed) {
    if (lane->peer->monitored && !WriteResumption(lane)) return;
    bool active = lane->op != nullptr || !lane->out_control.empty();
    if (!active && pieces_started++ == kPiecesPerWakeup) return;
    if (!active && !StartPiece(lane)) return;
    const uint64_t header_bytes = sizeof(FrameHeader);
    const uint64_t frame_bytes = header_bytes + lane->out_header.length;
    const char* payload = lane->op ? lane->op->data + lane->out_header.offset : lane->out_control.data();
    iovec iov[2];
    int count = 0;
    if (lane->out_done < header_bytes) {
      iov[count++] = {reinterpret_cast<char*>(&lane->out_header) + lane->out_done, header_bytes - lane->out_done};
      if (lane->out_header.length > 0) iov[count++] = {const_cast<char*>(payload), lane->out_header.length};
    } else {
      uint64_t sent = lane->out_done - header_bytes;
      iov[count++] = {const_cast<char*>(payload) + sent, lane->out_header.length - sent};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t n = ::sendmsg(lane->fd.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      if (lane->peer_ended) {  // the peer left in order and stopped waiting for the answer
        CloseLane(lane);
        return;
      }
      const int error = errno;
      // A peer that failed tells why (an abort frame) before it closes: that
      // frame may wait in this lane's receive queue. Read it before reporting
      // the bare broken connection, which would otherwise be all we know.
      HandleReadable(lane);
      if (lane->closed) return;
      errno = error;
      LaneError(lane, PeerLostError(absl::StrFormat("sending to rank %d (lane %d, %s) failed: %s",
                                                             lane->peer->rank, lane->index, lane->address,
                                                             std::strerror(errno))));
      return;
    }
    lane->out_done += static_cast<uint64_t>(n);
    if (lane->peer->monitored) {
      RecordSent(lane, iov, count, static_cast<size_t>(n));
      lane->peer->last_sent_ns.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
    }
    if (lane->out_done == frame_bytes) FinishPiece(lane);
  }
}

void ProgressThread::FinishPiece(Lane* lane) {
  if (!lane->op) {  // a control frame
    bool goodbye = lane->out_header.type == FrameType::kGoodbye;
    lane->out_control.clear();
    if (goodbye) {
      lane->goodbye_sent = true;
      ::shutdown(lane->fd.get(), SHUT_WR);
      if (lane->peer_ended) CloseLane(lane);  // both sides have said goodbye
    }
    return;
  }
  std::shared_ptr<SendOp> op = std::move(lane->op);
  Peer* peer = lane->peer;
  peer->bytes_sent.fetch_add(lane->out_header.length, std::memory_order_relaxed);
  lane->payload_bytes_sent.fetch_add(lane->out_header.length, std::memory_order_relaxed);
  absl::MutexLock lock(&peer->send_mu);
  op->pieces_in_flight--;
  op->pieces_done++;
  if (op->pieces_done == op->pieces_total) {
    op->request->Complete(absl::OkStatus());
  } else if (transport_->failed() && op->pieces_in_flight == 0) {
    op->request->Complete(transport_->status());
  }
}

// ---- receiving ----

void ProgressThread::HandleReadable(Lane* lane) {
  if (lane->peer_ended) return;  // nothing more comes; the goodbye's write closes the lane
  if (lane->peer->monitored) {
    transport_->monitor_->Heard(lane->peer->rank);
    if (lane->awaiting_resume && !ReadResumption(lane)) return;
  }
  while (!lane->closed) {
    if (!lane->in_payload) {
      if (!ReadHeader(lane)) return;
      if (!BeginPayload(lane)) return;
    }
    uint64_t length = lane->in_header.length;
    while (lane->in_payload_got < length) {
      ssize_t n = ::recv(lane->fd.get(), lane->in_dest + lane->in_payload_got, length - lane->in_payload_got, 0);
      if (n > 0) {
        lane->in_payload_got += static_cast<uint64_t>(n);
        if (lane->peer->monitored) NoteReceived(lane, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      LaneError(lane, n == 0 ? PeerLostError(absl::StrFormat(
                                   "lost connection to rank %d (lane %d, %s) in the middle of a message: the peer "
                                   "closed it (did it exit or crash?)",
                                   lane->peer->rank, lane->index, lane->address))
                             : PeerLostError(absl::StrFormat("receiving from rank %d (lane %d, %s) failed: %s",
                                                                      lane->peer->rank, lane->index, lane->address,
                                                                      std::strerror(errno))));
      return;
    }
    FinishPayload(lane);
  }
}

bool ProgressThread::ReadHeader(Lane* lane) {
  char* header = reinterpret_cast<char*>(&lane->in_header);
  while (lane->in_header_got < sizeof(FrameHeader)) {
    ssize_t n = ::recv(lane->fd.get(), header + lane->in_header_got, sizeof(FrameHeader) - lane->in_header_got, 0);
    if (n > 0) {
      lane->in_header_got += static_cast<uint64_t>(n);
      if (lane->peer->monitored) NoteReceived(lane, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && lane->in_header_got == 0 && lane->goodbye_received) {
      // Orderly end after the peer's goodbye. The peer waits for this side's
      // goodbye too: closing before it is out would read there as a crash.
      if (lane->goodbye_sent) {
        CloseLane(lane);
      } else {
        absl::MutexLock lock(&lane->peer->send_mu);
        lane->peer_ended = true;
        SetWriteInterest(lane, true);  // no more read events; the answer goes out
      }
      return false;
    }
    LaneError(lane, n == 0 ? PeerLostError(absl::StrFormat(
                                 "lost connection to rank %d (lane %d, %s): the peer closed it without saying goodbye "
                                 "(did it exit or crash?)",
                                 lane->peer->rank, lane->index, lane->address))
                           : PeerLostError(absl::StrFormat("receiving from rank %d (lane %d, %s) failed: %s",
                                                                    lane->peer->rank, lane->index, lane->address,
                                                                    std::strerror(errno))));
    return false;
  }
  absl::Status valid = ValidateHeader(lane->in_header);
  if (!valid.ok()) {
    LaneError(lane, WithKind(Prefixed(valid, absl::StrFormat("from rank %d (lane %d, %s): ", lane->peer->rank,
                                                             lane->index, lane->address)),
                             ErrorKind::kProtocol));
    return false;
  }
  return true;
}

bool ProgressThread::BeginPayload(Lane* lane) {
  const FrameHeader& h = lane->in_header;
  lane->in_payload = true;
  lane->in_payload_got = 0;
  if (h.type != FrameType::kData) {
    lane->in_control.assign(h.length, '\0');
    lane->in_dest = lane->in_control.data();
    return true;
  }
  absl::StatusOr<Mailbox::Landing> landing = transport_->mailbox_.Arrive(
      lane->peer->rank, FrameInfo{MessageTag{h.op_id, h.seq}, h.descriptor, h.total, h.offset, h.length});
  if (!landing.ok()) {
    transport_->Fail(landing.status());
    return false;
  }
  lane->in_dest = landing->dest;
  lane->in_landing = *std::move(landing);
  return true;
}

void ProgressThread::FinishPayload(Lane* lane) {
  const FrameHeader h = lane->in_header;
  lane->in_payload = false;
  lane->in_header_got = 0;
  if (h.type != FrameType::kData) {
    HandleControl(lane);
    return;
  }
  if (!lane->in_landing) return;  // abandoned when the transport failed (ReleaseAfterFailure)
  Peer* peer = lane->peer;
  peer->bytes_received.fetch_add(h.length, std::memory_order_relaxed);
  Mailbox::Landing landing = *std::move(lane->in_landing);
  lane->in_landing.reset();
  transport_->mailbox_.Landed(peer->rank, std::move(landing));
}

void ProgressThread::HandleControl(Lane* lane) {
  const FrameHeader& h = lane->in_header;
  if (h.type == FrameType::kAbort) {
    transport_->Fail(DecodeAbort(h, lane->in_control, lane->peer->rank));
    return;
  }
  if (h.type == FrameType::kHeartbeat) return;  // being read at all was its news (HandleReadable)
  if (h.type == FrameType::kAck && lane->peer->monitored) {
    TakeAck(lane);
    return;
  }
  if (h.type != FrameType::kGoodbye) {
    LaneError(lane, WithKind(absl::DataLossError(absl::StrFormat(
                                 "from rank %d (lane %d, %s): a frame of type %d where it has no place",
                                 lane->peer->rank, lane->index, lane->address, static_cast<int>(h.type))),
                             ErrorKind::kProtocol));
    return;
  }
  // Goodbye: the peer sends nothing more on this lane; answer in kind.
  lane->goodbye_received = true;
  Peer* peer = lane->peer;
  bool all_gone = true;
  for (const auto& other : peer->lanes) all_gone = all_gone && other->goodbye_received;
  if (all_gone) {
    bool pending = transport_->mailbox_.Depart(peer->rank);
    {
      absl::MutexLock lock(&peer->send_mu);
      pending = pending || !peer->queue.empty();
    }
    if (pending && !saying_goodbye_) {
      transport_->Fail(PeerLostError(absl::StrFormat(
          "rank %d shut down its communicator while this rank still had operations pending with it", peer->rank)));
    }
  }
  absl::MutexLock lock(&peer->send_mu);
  if (!lane->closed) SetWriteInterest(lane, true);
}

// ---- failure and closing ----

void ProgressThread::ReleaseAfterFailure(Lane* lane) {
  Peer* peer = lane->peer;
  bool mid_frame = false;
  if (lane->op) {
    mid_frame = lane->out_done > 0;
    std::shared_ptr<SendOp> op = std::move(lane->op);
    absl::MutexLock lock(&peer->send_mu);
    if (--op->pieces_in_flight == 0 && op->pieces_done < op->pieces_total) op->request->Complete(transport_->status());
  } else if (!lane->out_control.empty() && lane->out_done > 0) {
    mid_frame = true;
  }
  // A frame half received: its message is abandoned (its receive fails now
  // and its buffer may be freed), so the rest of its payload must never be
  // read into it. The lane closes below, after telling the peer why.
  bool mid_receive = false;
  if (lane->in_landing) {
    mid_receive = true;
    Mailbox::Landing landing = *std::move(lane->in_landing);
    lane->in_landing.reset();
    transport_->mailbox_.Abandon(peer->rank, std::move(landing));
  }
  if (lane->closed) return;
  // On a lane being resumed the peer reads elsewhere in the stream than this side writes.
  if (!mid_frame && !lane->goodbye_sent && InStep(lane)) {
    // Tell the peer why, so it fails with this rank's reason instead of a bare EOF.
    std::string abort = EncodeAbort(transport_->status());
    WriteAll(lane->fd.get(), abort.data(), abort.size(), absl::Now() + absl::Milliseconds(200)).IgnoreError();
  }
  if (mid_frame || mid_receive) CloseLane(lane);
}

void ProgressThread::CloseLane(Lane* lane) {
  absl::MutexLock lock(&lane->peer->send_mu);
  if (lane->closed) return;
  lane->closed = true;
  loop_.Unwatch(lane->fd.get());
  // The descriptor stays open until the transport is destroyed, so its number
  // cannot be reused under a concurrent epoll_ctl.
  ::shutdown(lane->fd.get(), SHUT_RDWR);
}

void ProgressThread::LaneError(Lane* lane, absl::Status status) {
  if (!transport_->failed() && !saying_goodbye_ && absl::IsUnavailable(status)) {
    // A lost connection may be the echo of a failure elsewhere: the peer sends
    // its reason (an abort frame) on its other lanes before closing this one.
    // Give that a moment to arrive so the error names the real cause.
    if (deferred_failure_.ok()) {
      deferred_failure_ = std::move(status);
      deferred_deadline_ = absl::Now() + kLostConnectionGrace;
    }
  } else if (!transport_->failed() && !saying_goodbye_) {
    transport_->Fail(std::move(status));
  } else if (!transport_->failed()) {
    Log(LogLevel::kInfo, "during shutdown: %s", status.message());
  }
  CloseLane(lane);
}

}  // namespace silk::transport::tcp
