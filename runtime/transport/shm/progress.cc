// The silk-shm progress thread: moves frames between user buffers and the
// rings, reads the pairs' sockets (wake-ups, aborts, goodbye, end), and
// sleeps when there is nothing to do.
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/transport/control.h"
#include "runtime/transport/shm/peer.h"
#include "runtime/transport/shm/shm_transport.h"

namespace silk::transport::shm {

namespace {

// Messages on a pair's socket once it is set up.
constexpr char kWake = 'w';     // look at the rings
constexpr char kGoodbye = 'G';  // orderly shutdown: everything sent is in the ring
// An abort frame (control.h), as on TCP: it starts with the frame magic.
constexpr char kFrameStart = static_cast<char>(kFrameMagic & 0xff);
static_assert(kFrameStart != kWake && kFrameStart != kGoodbye);

constexpr int kFramesPerTurn = 16;  // per peer and direction, so no peer starves the others
constexpr int kSleepMillis = 100;   // bound on a sleep, in case a wake-up is lost
constexpr int kTurnsPerSocketPoll = 16;
constexpr absl::Duration kControlWriteTimeout = absl::Milliseconds(200);

}  // namespace

int ShmTransport::Tick() {
  if (sleep_armed_) {
    DisarmSleep();
    sleep_armed_ = false;
  }
  const uint64_t generation = work_generation_.load(std::memory_order_seq_cst);
  if (peers_told_.load() && !closed_after_failure_) CloseAfterFailure();
  bool busy = false;
  if (!failed()) {
    for (Peer* peer : links_) {
      if (peer->closed) continue;
      busy |= PumpRecv(*peer, kFramesPerTurn);
      busy |= PumpSend(*peer);
    }
  }
  if (saying_goodbye_.load() && !goodbyes_done_.load()) busy |= SayGoodbyes();
  if (busy || absl::Now() - last_work_ < options_.spin) {
    if (busy) {
      last_work_ = absl::Now();
    } else {
      sched_yield();  // a spinning thread must not keep a user thread of this node off its core
    }
    // While spinning, the sockets are looked at only every few turns: a wait costs a system call.
    return ++turns_ % kTurnsPerSocketPoll == 0 ? 0 : EventLoop::kNoWait;
  }
  sleep_armed_ = true;
  return ArmSleep(generation) ? kSleepMillis : 0;
}

// ---- sending ----

bool ShmTransport::PumpSend(Peer& peer) {
  if (mailbox_.departed(peer.rank)) return false;  // what is queued for it fails in HandleGoodbye or at shutdown
  bool progress = false;
  absl::Status problem;
  for (int i = 0; i < kFramesPerTurn; ++i) {
    std::shared_ptr<SendOp> op;
    FrameHeader header;
    {
      absl::MutexLock lock(&peer.send_mu);
      if (failed() || peer.queue.empty()) {
        peer.send_blocked = false;
        break;
      }
      op = peer.queue.front();
      const uint64_t length = std::min<uint64_t>(options_.piece_bytes, op->header.total - op->next_offset);
      absl::StatusOr<bool> room = peer.out.HasRoom(length);
      if (!room.ok()) {
        problem = WithKind(Prefixed(room.status(), absl::StrFormat("sending to rank %d: ", peer.rank)),
                           ErrorKind::kProtocol);
        break;
      }
      if (!*room) {
        peer.send_blocked = true;
        peer.blocked_payload = length;
        break;
      }
      peer.send_blocked = false;
      header = op->header;
      header.offset = op->next_offset;
      header.length = length;
      op->copying = true;
    }
    peer.out.Write(header, op->data + header.offset);
    peer.bytes_sent.fetch_add(header.length, std::memory_order_relaxed);
    progress = true;
    if (peer.out.TakeWakeRequest()) WakePeer(peer);
    absl::MutexLock lock(&peer.send_mu);
    op->copying = false;
    op->started = true;
    op->next_offset += header.length;
    const bool finished = op->next_offset == op->header.total;
    if (finished || failed()) {
      op->request->Complete(finished ? absl::OkStatus() : status());
      if (!peer.queue.empty() && peer.queue.front() == op) peer.queue.pop_front();
    }
  }
  if (!problem.ok()) Fail(problem);
  return progress;
}

// ---- receiving ----

bool ShmTransport::PumpRecv(Peer& peer, int max_frames) {
  bool progress = false;
  for (int i = 0; i < max_frames && !failed(); ++i) {
    FrameHeader h;
    absl::StatusOr<bool> next = peer.in.Next(&h);
    if (!next.ok()) {
      Fail(WithKind(Prefixed(next.status(), absl::StrFormat("from rank %d (shared memory): ", peer.rank)),
                    ErrorKind::kProtocol));
      return progress;
    }
    if (!*next) break;
    absl::StatusOr<Mailbox::Landing> landing =
        mailbox_.Arrive(peer.rank, FrameInfo{MessageTag{h.op_id, h.seq}, h.descriptor, h.total, h.offset, h.length});
    if (!landing.ok()) {
      Fail(landing.status());
      return progress;
    }
    peer.in.CopyPayload(h, landing->dest);
    peer.in.Release(h);
    peer.bytes_received.fetch_add(h.length, std::memory_order_relaxed);
    progress = true;
    mailbox_.Landed(peer.rank, *std::move(landing));
    if (peer.in.TakeWakeRequest()) WakePeer(peer);
  }
  return progress;
}

// ---- sleeping and the sockets ----

bool ShmTransport::ArmSleep(uint64_t generation) {
  sleeping_.store(true, std::memory_order_seq_cst);
  bool work = false;
  for (Peer* peer : links_) {
    if (peer->closed) continue;
    if (peer->in.ArmWake()) work = true;
    if (peer->send_blocked && peer->out.ArmWake(peer->blocked_payload)) work = true;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // Fail() and Send() bump the generation; stop and goodbye wake the loop.
  if (work_generation_.load(std::memory_order_seq_cst) != generation) work = true;
  return !work;
}

void ShmTransport::DisarmSleep() {
  sleeping_.store(false, std::memory_order_seq_cst);
  for (Peer* peer : links_) {
    if (peer->closed) continue;
    peer->in.DisarmWake();
    if (peer->send_blocked) peer->out.DisarmWake();
  }
}

void ShmTransport::ReadSocket(Peer& peer) {
  char buffer[4096];
  while (!peer.closed) {
    ssize_t n = ::recv(peer.socket.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) {
      peer.control_in.append(buffer, static_cast<size_t>(n));
      if (!ParseControl(peer)) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    PeerClosed(peer, n == 0 ? std::string() : std::string(std::strerror(errno)));
  }
}

bool ShmTransport::ParseControl(Peer& peer) {
  std::string& in = peer.control_in;
  size_t pos = 0;
  while (pos < in.size() && !peer.closed) {
    const char type = in[pos];
    if (type == kWake) {
      pos++;
    } else if (type == kGoodbye) {
      pos++;
      HandleGoodbye(peer);
    } else if (type == kFrameStart) {
      if (in.size() - pos < sizeof(FrameHeader)) break;
      FrameHeader header;
      std::memcpy(&header, in.data() + pos, sizeof(header));
      absl::Status valid = ValidateHeader(header);
      if (valid.ok() && header.type != FrameType::kAbort) {
        valid = absl::DataLossError("a frame other than an abort on the pair's socket");
      }
      if (!valid.ok()) {
        Fail(WithKind(Prefixed(valid, absl::StrFormat("from rank %d (shared-memory socket): ", peer.rank)),
                      ErrorKind::kProtocol));
        CloseSocket(peer);
        return false;
      }
      if (in.size() - pos < sizeof(header) + header.length) break;
      absl::string_view reason(in.data() + pos + sizeof(header), header.length);
      Fail(DecodeAbort(header, reason, peer.rank));
      pos += sizeof(header) + header.length;
    } else {
      Fail(ProtocolError(absl::StrFormat("unexpected byte 0x%02x on the shared-memory socket of rank %d",
                                               static_cast<unsigned char>(type), peer.rank)));
      CloseSocket(peer);
      return false;
    }
  }
  in.erase(0, pos);
  return !peer.closed;
}

void ShmTransport::HandleGoodbye(Peer& peer) {
  peer.goodbye_received = true;
  // Everything the peer sent before it said goodbye is in the ring already: take it in.
  while (!failed() && PumpRecv(peer, INT_MAX)) {
  }
  bool pending = mailbox_.Depart(peer.rank);
  {
    absl::MutexLock lock(&peer.send_mu);
    pending = pending || !peer.queue.empty();
  }
  if (pending && !saying_goodbye_.load()) {
    Fail(PeerLostError(absl::StrFormat(
        "rank %d shut down its communicator while this rank still had operations pending with it", peer.rank)));
  }
}

void ShmTransport::PeerClosed(Peer& peer, const std::string& why) {
  const bool orderly = peer.goodbye_received;
  CloseSocket(peer);
  if (orderly) return;
  // As over TCP, what the peer sent before it ended is delivered: the frames it
  // published are whole. Only then does its end fail the transport.
  while (!failed() && PumpRecv(peer, INT_MAX)) {
  }
  absl::Status lost = PeerLostError(absl::StrFormat(
      "lost connection to rank %d (shared memory on this node, pid %d): %s", peer.rank, peer.pid,
      why.empty() ? "the peer closed it without saying goodbye (did it exit or crash?)" : why));
  if (!failed() && !saying_goodbye_.load()) {
    Fail(std::move(lost));
  } else if (!failed()) {
    Log(LogLevel::kInfo, "during shutdown: %s", lost.message());
  }
}

// ---- goodbye, failure ----

bool ShmTransport::SayGoodbyes() {
  if (failed()) {  // the peers were told why instead
    goodbyes_done_.store(true);
    return false;
  }
  bool all = true, progress = false;
  for (Peer* peer : links_) {
    if (peer->closed || peer->goodbye_sent) continue;
    bool drained;
    {
      absl::MutexLock lock(&peer->send_mu);
      drained = peer->queue.empty();
    }
    if (drained || mailbox_.departed(peer->rank) || absl::Now() >= goodbye_deadline_) {
      SendControl(*peer, std::string(1, kGoodbye), absl::Now() + kControlWriteTimeout);
      peer->goodbye_sent = true;
      progress = true;
    } else {
      all = false;
    }
  }
  goodbyes_done_.store(all);
  return progress;
}

void ShmTransport::TellPeers(const absl::Status& reason) {
  const std::string message = EncodeAbort(reason);
  const absl::Time deadline = absl::Now() + kControlWriteTimeout;
  for (Peer* peer : links_) SendControl(*peer, message, deadline);
}

void ShmTransport::CloseAfterFailure() {
  // The peers were told why (Fail); end the connections.
  closed_after_failure_ = true;
  for (Peer* peer : links_) CloseSocket(*peer);
}

void ShmTransport::CloseSocket(Peer& peer) {
  if (peer.closed) return;
  peer.closed = true;
  loop_.Unwatch(peer.socket.get());
  // The descriptor itself stays open until the transport is destroyed.
  ::shutdown(peer.socket.get(), SHUT_RDWR);
}

void ShmTransport::WakePeer(Peer& peer) {
  if (peer.closed) return;
  // Whoever holds the lock is writing a message, which wakes the peer just as well.
  if (!peer.write_mu.TryLock()) return;
  const char wake = kWake;
  // A full socket buffer already holds wake-ups: dropping this one is fine.
  ssize_t ignored = ::send(peer.socket.get(), &wake, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)ignored;
  peer.write_mu.Unlock();
}

void ShmTransport::SendControl(Peer& peer, const std::string& message, absl::Time deadline) {
  if (peer.closed) return;
  absl::MutexLock lock(&peer.write_mu);
  absl::Status sent = WriteAll(peer.socket.get(), message.data(), message.size(), deadline);
  if (!sent.ok()) Log(LogLevel::kInfo, "telling rank %d over shared memory: %s", peer.rank, sent.message());
}

}  // namespace silk::transport::shm
