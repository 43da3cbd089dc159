// The silk-shm progress thread: moves frames between user buffers and the
// rings, reads the pairs' sockets (wake-ups, aborts, goodbye, end), and
// sleeps when there is nothing to do.
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/log.h"
#include "runtime/transport/shm/peer.h"
#include "runtime/transport/shm/shm_transport.h"

namespace silk::transport::shm {

absl::Status MatchError(const Peer& peer, int self, MessageTag tag, const InboundMessage& m);

namespace {

// Messages on a pair's socket once it is set up.
constexpr char kWake = 'w';     // look at the rings
constexpr char kGoodbye = 'G';  // orderly shutdown: everything sent is in the ring
constexpr char kAbort = 'A';    // then u32 status code, u32 length, the reason
constexpr size_t kAbortHeader = 1 + 4 + 4;

constexpr int kFramesPerTurn = 16;  // per peer and direction, so no peer starves the others
constexpr int kSleepMillis = 100;   // bound on a sleep, in case a wake-up is lost
constexpr int kTurnsPerSocketPoll = 16;
constexpr absl::Duration kControlWriteTimeout = absl::Milliseconds(200);

}  // namespace

void ShmTransport::Loop() {
  pthread_setname_np(pthread_self(), "silk-shm");
  absl::Time last_work = absl::Now();
  unsigned turns = 0;
  while (true) {
    const uint64_t generation = work_generation_.load(std::memory_order_seq_cst);
    if (peers_told_.load() && !closed_after_failure_) CloseAfterFailure();
    if (stop_.load()) break;
    bool busy = false;
    if (!failed()) {
      for (Peer* peer : links_) {
        if (peer->closed) continue;
        busy |= PumpRecv(*peer, kFramesPerTurn);
        busy |= PumpSend(*peer);
      }
    }
    if (saying_goodbye_.load() && !goodbyes_done_.load()) busy |= SayGoodbyes();
    if (busy || absl::Now() - last_work < options_.spin) {
      if (busy) {
        last_work = absl::Now();
      } else {
        sched_yield();  // a spinning thread must not keep a user thread of this node off its core
      }
      if (++turns % kTurnsPerSocketPoll == 0) PollSockets(0);
      continue;
    }
    const bool sleep = ArmSleep(generation);
    PollSockets(sleep ? kSleepMillis : 0);
    DisarmSleep();
  }
}

// ---- sending ----

bool ShmTransport::PumpSend(Peer& peer) {
  if (peer.departed.load()) return false;  // what is queued for it fails in HandleGoodbye or at shutdown
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
        problem = absl::Status(room.status().code(),
                               absl::StrFormat("sending to rank %d: %s", peer.rank, room.status().message()));
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
      Fail(absl::Status(next.status().code(),
                        absl::StrFormat("from rank %d (shared memory): %s", peer.rank, next.status().message())));
      return progress;
    }
    if (!*next) break;
    const MessageTag tag{h.op_id, h.seq};
    std::shared_ptr<InboundMessage> message;
    char* dest = nullptr;
    bool staging = false;
    absl::Status problem;
    RequestPtr refused;  // completed only after the peers were told (Fail)
    {
      absl::MutexLock lock(&peer.recv_mu);
      std::shared_ptr<InboundMessage>& slot = peer.inbound[tag];
      if (!slot) slot = std::make_shared<InboundMessage>();
      InboundMessage& m = *slot;
      if (!m.arrived) {
        m.arrived = true;
        m.sender_descriptor = h.descriptor;
        m.total = h.total;
        if (m.request) problem = MatchError(peer, rank_, tag, m);
      } else if (h.descriptor != m.sender_descriptor || h.total != m.total || m.landed + h.length > m.total) {
        problem = absl::DataLossError(absl::StrFormat(
            "rank %d sent inconsistent frames for operation #%d message %d", peer.rank, tag.op_id, tag.seq));
      }
      if (problem.ok()) {
        if (m.request) {
          dest = m.dest + h.offset;
        } else {
          if (!m.staging) m.staging = std::make_unique_for_overwrite<char[]>(std::max<uint64_t>(m.total, 1));
          dest = m.staging.get() + h.offset;
          staging = true;
        }
        m.copying = true;
        message = slot;
      } else if (m.request) {
        refused = m.request;
        peer.inbound.erase(tag);
      }
    }
    if (!problem.ok()) {
      Fail(problem);
      if (refused) refused->Complete(problem);
      return progress;
    }
    peer.in.CopyPayload(h, dest);
    peer.in.Release(h);
    peer.bytes_received.fetch_add(h.length, std::memory_order_relaxed);
    progress = true;
    {
      absl::MutexLock lock(&peer.recv_mu);
      InboundMessage& m = *message;
      m.copying = false;
      m.landed += h.length;
      if (staging) {
        if (m.request) {
          if (h.length > 0) std::memcpy(m.dest + h.offset, m.staging.get() + h.offset, h.length);
        } else {
          m.staged.emplace_back(h.offset, h.length);
        }
      }
      if (m.request && (m.landed == m.total || failed())) {
        m.request->Complete(m.landed == m.total ? absl::OkStatus() : status());
        auto it = peer.inbound.find(tag);
        if (it != peer.inbound.end() && it->second == message) peer.inbound.erase(it);
      }
    }
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
  // Fail() and Send() bump the generation; stop and goodbye write the eventfd.
  if (work_generation_.load(std::memory_order_seq_cst) != generation || stop_.load()) work = true;
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

void ShmTransport::PollSockets(int timeout_ms) {
  epoll_event events[32];
  int n = epoll_wait(epoll_.get(), events, 32, timeout_ms);
  if (n < 0) {
    if (errno != EINTR) Fail(absl::InternalError(absl::StrFormat("epoll_wait: %s", std::strerror(errno))));
    return;
  }
  for (int i = 0; i < n; ++i) {
    Peer* peer = static_cast<Peer*>(events[i].data.ptr);
    if (peer == nullptr) {
      uint64_t count;
      while (::read(wake_.get(), &count, sizeof(count)) > 0) {
      }
      continue;
    }
    ReadSocket(*peer);
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
    } else if (type == kAbort) {
      if (in.size() - pos < kAbortHeader) break;
      uint32_t code, length;
      std::memcpy(&code, in.data() + pos + 1, 4);
      std::memcpy(&length, in.data() + pos + 5, 4);
      if (length > tcp::kMaxControlPayload) {
        Fail(absl::DataLossError(absl::StrFormat("rank %d sent an abort of %d bytes over shared memory (at most %d)",
                                                 peer.rank, length, tcp::kMaxControlPayload)));
        CloseSocket(peer);
        return false;
      }
      if (in.size() - pos < kAbortHeader + length) break;
      std::string reason = in.substr(pos + kAbortHeader, length);
      pos += kAbortHeader + length;
      auto status_code = static_cast<absl::StatusCode>(code);
      if (code == 0 || code > 16) status_code = absl::StatusCode::kAborted;
      Fail(absl::Status(status_code, absl::StrFormat("rank %d aborted: %s", peer.rank, reason)));
    } else {
      Fail(absl::DataLossError(absl::StrFormat("unexpected byte 0x%02x on the shared-memory socket of rank %d",
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
  peer.departed.store(true);
  bool pending = false;
  {
    absl::MutexLock lock(&peer.recv_mu);
    for (const auto& [tag, message] : peer.inbound) {
      pending = pending || !message->arrived || message->landed < message->total;
    }
  }
  {
    absl::MutexLock lock(&peer.send_mu);
    pending = pending || !peer.queue.empty();
  }
  if (pending && !saying_goodbye_.load()) {
    Fail(absl::FailedPreconditionError(absl::StrFormat(
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
  absl::Status lost = absl::UnavailableError(absl::StrFormat(
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
    if (drained || peer->departed.load() || absl::Now() >= goodbye_deadline_) {
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
  std::string text(reason.message().substr(0, tcp::kMaxControlPayload));
  const uint32_t code = static_cast<uint32_t>(reason.code());
  const uint32_t length = static_cast<uint32_t>(text.size());
  std::string message(kAbortHeader, '\0');
  message[0] = kAbort;
  std::memcpy(message.data() + 1, &code, 4);
  std::memcpy(message.data() + 5, &length, 4);
  message += text;
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
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, peer.socket.get(), nullptr);
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
  absl::Status sent = tcp::WriteAll(peer.socket.get(), message.data(), message.size(), deadline);
  if (!sent.ok()) Log(LogLevel::kInfo, "telling rank %d over shared memory: %s", peer.rank, sent.message());
}

}  // namespace silk::transport::shm
