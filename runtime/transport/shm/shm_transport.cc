#include "runtime/transport/shm/shm_transport.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"
#include "runtime/transport/shm/link.h"
#include "runtime/transport/shm/peer.h"

namespace silk::transport::shm {
namespace {

constexpr int kMaxConcurrentHandshakes = 32;

}  // namespace

absl::Status MatchError(const Peer& peer, int self, MessageTag tag, const InboundMessage& m) {
  if (m.descriptor != m.sender_descriptor) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "mismatched collective calls at operation #%d: rank %d called %s but rank %d called %s", tag.op_id, self,
        m.descriptor.ToString(), peer.rank, m.sender_descriptor.ToString()));
  }
  if (m.request->bytes() != m.total) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "mismatched message sizes at operation #%d (%s), message %d: rank %d expects %d bytes but rank %d sends %d",
        tag.op_id, m.descriptor.ToString(), tag.seq, self, m.request->bytes(), peer.rank, m.total));
  }
  return absl::OkStatus();
}

ShmTransport::ShmTransport(int rank, int size, std::vector<int> local_ranks, const ShmOptions& options)
    : rank_(rank), size_(size), local_ranks_(std::move(local_ranks)), options_(options) {
  for (int r = 0; r < size; ++r) {
    auto peer = std::make_unique<Peer>();
    peer->rank = r;
    peers_.push_back(std::move(peer));
  }
  for (int r : local_ranks_) peers_[r]->local = true;
  claimed_.assign(size, false);
}

// ---- set-up ----

absl::StatusOr<std::unique_ptr<ShmTransport>> ShmTransport::Create(int rank, int size,
                                                                   const std::vector<int>& local_ranks,
                                                                   uint64_t job_id, const std::string& token,
                                                                   const ShmOptions& options, absl::Time deadline) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrFormat("rank %d is outside a world of size %d", rank, size));
  }
  std::vector<int> local = local_ranks;
  std::sort(local.begin(), local.end());
  local.erase(std::unique(local.begin(), local.end()), local.end());
  if (local.empty() || local.front() < 0 || local.back() >= size ||
      !std::binary_search(local.begin(), local.end(), rank)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "local ranks [%s] must lie in a world of %d and include rank %d", absl::StrJoin(local_ranks, ", "), size, rank));
  }
  const uint64_t ring = options.ring_bytes;
  if (ring < kMinRingBytes || ring > kMaxRingBytes || (ring & (ring - 1)) != 0 || options.piece_bytes == 0 ||
      FrameBytes(options.piece_bytes) > ring / 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "shared-memory rings of %d bytes (a power of two in [%d, %d]) must hold two pieces of %d bytes", ring,
        kMinRingBytes, kMaxRingBytes, options.piece_bytes));
  }
  std::unique_ptr<ShmTransport> transport(new ShmTransport(rank, size, local, options));
  ShmTransport* t = transport.get();
  const bool accepts = local.back() > rank;
  tcp::ScopedFd listener;
  if (accepts) {
    SILK_ASSIGN_OR_RETURN(listener, ListenLocal(SocketName(job_id, rank)));
  }

  // Accept the higher ranks while connecting to the lower ones.
  std::atomic<bool> give_up{false};
  std::thread acceptor;
  if (accepts) {
    acceptor = std::thread([&] { t->AcceptLinks(listener.get(), job_id, token, deadline, give_up); });
  }
  absl::Status connected;
  const tcp::HandshakeParams params{job_id, token, rank, size, 1, 0};
  for (int peer : local) {
    if (peer >= rank) break;
    absl::StatusOr<Link> link = ConnectLink(job_id, peer, params, options.ring_bytes, deadline);
    if (!link.ok()) {
      connected = absl::Status(link.status().code(), absl::StrFormat("joining rank %d to rank %d by shared memory: %s",
                                                                     rank, peer, link.status().message()));
      break;
    }
    t->Install(std::move(*link));
  }
  if (!connected.ok()) give_up = true;
  if (acceptor.joinable()) acceptor.join();
  listener.reset();  // the name disappears with it: nobody else can knock
  SILK_RETURN_IF_ERROR(connected);
  {
    absl::MutexLock lock(&t->setup_mu_);
    std::vector<int> missing;
    for (int peer : local) {
      if (peer > rank && !t->peers_[peer]->linked) missing.push_back(peer);
    }
    if (!missing.empty()) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "rank %d timed out waiting for ranks %s of its node to join by shared memory", rank,
          absl::StrJoin(missing, ", ")));
    }
  }
  SILK_RETURN_IF_ERROR(t->Start());
  return transport;
}

void ShmTransport::AcceptLinks(int listener, uint64_t job_id, const std::string& token, absl::Time deadline,
                               const std::atomic<bool>& give_up) {
  const int expected = static_cast<int>(std::count_if(local_ranks_.begin(), local_ranks_.end(),
                                                      [this](int r) { return r > rank_; }));
  const tcp::HandshakeParams params{job_id, token, rank_, size_, 1, 0};
  std::vector<std::thread> handshakes;
  std::atomic<int> running{0};
  while (!give_up.load() && absl::Now() < deadline) {
    {
      absl::MutexLock lock(&setup_mu_);
      if (accepted_ == expected) break;
    }
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    tcp::ScopedFd connection(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!connection.valid()) continue;
    if (running.load() >= kMaxConcurrentHandshakes) {
      rejected_++;
      Log(LogLevel::kWarning, "refused a shared-memory connection (pid %d): too many handshakes in progress",
          PeerPid(connection.get()));
      continue;
    }
    running++;
    absl::Time until = std::min(deadline, absl::Now() + options_.handshake_timeout);
    handshakes.emplace_back([this, &running, params, until, c = std::move(connection)]() mutable {
      pid_t pid = PeerPid(c.get());
      absl::StatusOr<Link> link = AcceptLink(std::move(c), params, until, [this](int r) { return Claim(r); });
      if (link.ok()) {
        Install(std::move(*link));
      } else {
        rejected_++;
        Log(LogLevel::kWarning, "refused a shared-memory connection (pid %d): %s", pid, link.status().message());
      }
      running--;
    });
  }
  for (auto& handshake : handshakes) handshake.join();
}

absl::Status ShmTransport::Claim(int rank) {
  if (rank <= rank_ || rank >= size_ || !peers_[rank]->local) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank %d may not join rank %d by shared memory (its higher local ranks are the ones above it in [%s])", rank,
        rank_, absl::StrJoin(local_ranks_, ", ")));
  }
  absl::MutexLock lock(&setup_mu_);
  if (claimed_[rank]) return absl::AlreadyExistsError(absl::StrFormat("rank %d is already connected", rank));
  claimed_[rank] = true;
  return absl::OkStatus();
}

void ShmTransport::Install(Link&& link) {
  Peer& peer = *peers_[link.peer];
  const int out = rank_ < link.peer ? 0 : 1;  // ring 0 carries the lower rank's frames
  const uint64_t capacity = link.segment.ring_bytes();
  peer.pid = link.pid;
  peer.socket = std::move(link.socket);
  peer.segment = std::move(link.segment);
  peer.out = RingWriter(peer.segment.control(out), peer.segment.ring(out), capacity);
  peer.in = RingReader(peer.segment.control(1 - out), peer.segment.ring(1 - out), capacity);
  absl::MutexLock lock(&setup_mu_);
  peer.linked = true;
  if (link.peer > rank_) accepted_++;
}

absl::Status ShmTransport::Start() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_.valid() || !wake_.valid()) {
    return absl::InternalError(absl::StrFormat("epoll/eventfd: %s", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  for (auto& peer : peers_) {
    if (!peer->linked) continue;
    links_.push_back(peer.get());
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = peer.get();
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, peer->socket.get(), &ev) < 0) {
      return absl::InternalError(absl::StrFormat("epoll_ctl(ADD) for rank %d: %s", peer->rank, std::strerror(errno)));
    }
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

ShmTransport::~ShmTransport() {
  if (thread_.joinable()) {
    // Let the queued sends out (bounded), say goodbye to every peer, stop.
    // A failure being told to the peers on another thread finishes first (bounded by its writes).
    const absl::Time told_by = absl::Now() + absl::Seconds(1);
    while (failed() && !peers_told_.load() && absl::Now() < told_by) absl::SleepFor(absl::Milliseconds(1));
    goodbye_deadline_ = failed() ? absl::Now() : absl::Now() + absl::Seconds(2);
    Log(LogLevel::kDebug, "shared memory: saying goodbye to %d local peers", links_.size());
    saying_goodbye_.store(true);
    WakeProgress();
    const absl::Time until = goodbye_deadline_ + absl::Seconds(1);
    while (!goodbyes_done_.load() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(1));
    stop_.store(true);
    WakeProgress();
    thread_.join();
  }
  // Requests nobody will complete any more (e.g. receives that were never matched).
  absl::Status closed = failed() ? status() : absl::CancelledError("transport shut down");
  for (auto& peer : peers_) {
    {
      absl::MutexLock lock(&peer->send_mu);
      for (auto& op : peer->queue) op->request->Complete(closed);
      peer->queue.clear();
    }
    absl::MutexLock lock(&peer->recv_mu);
    for (auto& [tag, message] : peer->inbound) {
      if (message->request) message->request->Complete(closed);
    }
    peer->inbound.clear();
  }
  // The peers' sockets close and their segments unmap with them.
}

// ---- data path ----

bool ShmTransport::reaches(int peer) const { return peer >= 0 && peer < size_ && peers_[peer]->local; }

RequestPtr ShmTransport::FailedRequest(Request::Kind kind, int peer, MessageTag tag, size_t bytes,
                                       absl::Status status) {
  auto request = std::make_shared<Request>(kind, peer, tag, bytes);
  request->Complete(std::move(status));
  return request;
}

RequestPtr ShmTransport::Send(int peer, MessageTag tag, const OpDescriptor& descriptor, const void* data,
                              size_t bytes) {
  if (peer < 0 || peer >= size_) {
    return FailedRequest(Request::Kind::kSend, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat("send to rank %d outside world of %d", peer, size_)));
  }
  if (!peers_[peer]->local) {
    return FailedRequest(Request::Kind::kSend, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat(
                             "send to rank %d: it is on another node; shared memory reaches ranks [%s]", peer,
                             absl::StrJoin(local_ranks_, ", "))));
  }
  if (failed()) return FailedRequest(Request::Kind::kSend, peer, tag, bytes, status());
  if (peer == rank_) return SendToSelf(tag, descriptor, data, bytes);
  Peer& p = *peers_[peer];
  if (p.departed.load()) {
    return FailedRequest(Request::Kind::kSend, peer, tag, bytes,
                         absl::FailedPreconditionError(absl::StrFormat("rank %d has shut down its communicator", peer)));
  }
  auto op = std::make_shared<SendOp>();
  op->request = std::make_shared<Request>(Request::Kind::kSend, peer, tag, bytes);
  op->data = static_cast<const char*>(data);
  op->header.op_id = tag.op_id;
  op->header.seq = tag.seq;
  op->header.total = bytes;
  op->header.descriptor = descriptor;
  RequestPtr request = op->request;
  {
    absl::MutexLock lock(&p.send_mu);
    if (failed()) {
      request->Complete(status());
      return request;
    }
    p.queue.push_back(std::move(op));
  }
  work_generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst)) WakeProgress();
  return request;
}

RequestPtr ShmTransport::Recv(int peer, MessageTag tag, const OpDescriptor& descriptor, void* data, size_t bytes) {
  if (peer < 0 || peer >= size_) {
    return FailedRequest(Request::Kind::kRecv, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat("receive from rank %d outside world of %d", peer, size_)));
  }
  if (!peers_[peer]->local) {
    return FailedRequest(Request::Kind::kRecv, peer, tag, bytes,
                         absl::InvalidArgumentError(absl::StrFormat(
                             "receive from rank %d: it is on another node; shared memory reaches ranks [%s]", peer,
                             absl::StrJoin(local_ranks_, ", "))));
  }
  if (failed()) return FailedRequest(Request::Kind::kRecv, peer, tag, bytes, status());
  auto request = std::make_shared<Request>(Request::Kind::kRecv, peer, tag, bytes);
  absl::Status poison = PostReceive(*peers_[peer], tag, descriptor, static_cast<char*>(data), request);
  if (!poison.ok()) {  // a mismatch fails the whole job; the peers hear of it before this request ends
    Fail(poison);
    request->Complete(poison);
  }
  return request;
}

absl::Status ShmTransport::PostReceive(Peer& peer, MessageTag tag, const OpDescriptor& descriptor, char* dest,
                                       const RequestPtr& request) {
  absl::MutexLock lock(&peer.recv_mu);
  if (failed()) {  // checked under the lock, so a concurrent Sweep cannot miss this receive
    request->Complete(status());
    return absl::OkStatus();
  }
  auto existing = peer.inbound.find(tag);
  if (existing != peer.inbound.end() && existing->second->request) {
    request->Complete(absl::InvalidArgumentError(absl::StrFormat(
        "a receive from rank %d for operation #%d message %d is already posted", peer.rank, tag.op_id, tag.seq)));
    return absl::OkStatus();
  }
  std::shared_ptr<InboundMessage>& slot = peer.inbound[tag];
  if (!slot) slot = std::make_shared<InboundMessage>();
  InboundMessage& m = *slot;
  m.request = request;
  m.descriptor = descriptor;
  m.dest = dest;
  if (!m.arrived) {
    if (peer.departed.load()) {  // everything it sent is in: this will never come
      peer.inbound.erase(tag);
      request->Complete(absl::FailedPreconditionError(absl::StrFormat(
          "rank %d has shut down its communicator; operation #%d message %d will never arrive", peer.rank, tag.op_id,
          tag.seq)));
    }
    return absl::OkStatus();
  }
  absl::Status match = MatchError(peer, rank_, tag, m);
  if (!match.ok()) {
    peer.inbound.erase(tag);
    return match;  // the caller fails the transport, then completes the request
  }
  for (auto [offset, length] : m.staged) {
    if (length > 0) std::memcpy(dest + offset, m.staging.get() + offset, length);
  }
  m.staged.clear();
  if (m.landed == m.total && !m.copying) {
    request->Complete(absl::OkStatus());
    peer.inbound.erase(tag);
  }
  return absl::OkStatus();
}

RequestPtr ShmTransport::SendToSelf(MessageTag tag, const OpDescriptor& descriptor, const void* data, size_t bytes) {
  Peer& self = *peers_[rank_];
  auto request = std::make_shared<Request>(Request::Kind::kSend, rank_, tag, bytes);
  absl::Status problem;
  {
    absl::MutexLock lock(&self.recv_mu);
    std::shared_ptr<InboundMessage>& slot = self.inbound[tag];
    if (!slot) slot = std::make_shared<InboundMessage>();
    InboundMessage& m = *slot;
    m.arrived = true;
    m.sender_descriptor = descriptor;
    m.total = bytes;
    m.landed = bytes;
    if (m.request) {
      if (m.descriptor != descriptor || m.request->bytes() != bytes) {
        problem = absl::FailedPreconditionError(absl::StrFormat(
            "operation #%d message %d to itself: sent %s with %d bytes, expected %s with %d bytes", tag.op_id, tag.seq,
            descriptor.ToString(), bytes, m.descriptor.ToString(), m.request->bytes()));
        m.request->Complete(problem);
      } else {
        if (bytes > 0) std::memcpy(m.dest, data, bytes);
        m.request->Complete(absl::OkStatus());
      }
      self.inbound.erase(tag);
    } else {
      m.staging = std::make_unique_for_overwrite<char[]>(std::max<size_t>(bytes, 1));
      if (bytes > 0) std::memcpy(m.staging.get(), data, bytes);
      m.staged.emplace_back(0, bytes);
    }
  }
  request->Complete(problem);
  if (!problem.ok()) Fail(problem);
  return request;
}

// ---- errors ----

absl::Status ShmTransport::status() const {
  absl::MutexLock lock(&state_mu_);
  return error_;
}

void ShmTransport::Abort(const absl::Status& reason) {
  Fail(reason.ok() ? absl::AbortedError("aborted by the application") : reason);
}

void ShmTransport::Fail(absl::Status status) {
  {
    absl::MutexLock lock(&state_mu_);
    if (!error_.ok()) return;
    error_ = status;
    failed_.store(true, std::memory_order_release);
  }
  Log(LogLevel::kWarning, "shared-memory transport failed: %s", status.message());
  // Before any request completes: a caller that exits as soon as it sees the
  // error must not leave its peers with a bare end of connection.
  TellPeers(status);
  peers_told_.store(true);
  Sweep();
  work_generation_.fetch_add(1, std::memory_order_seq_cst);
  WakeProgress();  // it closes the sockets
}

void ShmTransport::Sweep() {
  const absl::Status error = status();
  for (auto& peer : peers_) {
    {
      absl::MutexLock lock(&peer->send_mu);
      // An op being copied right now is completed by the progress thread once the copy is done.
      for (auto& op : peer->queue) {
        if (!op->copying) op->request->Complete(error);
      }
      peer->queue.clear();
    }
    absl::MutexLock lock(&peer->recv_mu);
    for (auto it = peer->inbound.begin(); it != peer->inbound.end();) {
      auto next = std::next(it);
      InboundMessage& m = *it->second;
      if (!m.copying) {
        if (m.request) m.request->Complete(error);
        peer->inbound.erase(it);
      }
      it = next;
    }
  }
}

void ShmTransport::WakeProgress() {
  if (!wake_.valid()) return;
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
  (void)ignored;
}

PeerCounters ShmTransport::counters(int peer) const {
  if (peer < 0 || peer >= size_) return {};
  return PeerCounters{peers_[peer]->bytes_sent.load(), peers_[peer]->bytes_received.load()};
}

}  // namespace silk::transport::shm
