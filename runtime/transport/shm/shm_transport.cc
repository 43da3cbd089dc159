#include "runtime/transport/shm/shm_transport.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"
#include "runtime/transport/shm/link.h"
#include "runtime/transport/shm/peer.h"

namespace silk::transport::shm {
ShmTransport::ShmTransport(int rank, int size, std::vector<int> local_ranks, const ShmOptions& options)
    : MessageTransport(rank, size, "shared-memory"), local_ranks_(std::move(local_ranks)), options_(options) {
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
  t->loop_.AddTick([t] { return t->Tick(); });
  SILK_RETURN_IF_ERROR(t->loop_.Start([t](const absl::Status& error) { t->Fail(error); }));
  const HandshakeParams params{job_id, token, rank, size, 1, 0};
  // Accept the higher ranks (on the loop) while connecting to the lower ones.
  if (local.back() > rank) SILK_RETURN_IF_ERROR(t->Listen(job_id, params, deadline));
  for (int peer : local) {
    if (peer >= rank) break;
    absl::StatusOr<Link> link = ConnectLink(job_id, peer, params, options.ring_bytes, deadline);
    if (!link.ok()) {
      return absl::Status(link.status().code(), absl::StrFormat("joining rank %d to rank %d by shared memory: %s",
                                                                rank, peer, link.status().message()));
    }
    t->Install(std::move(*link));
  }
  SILK_RETURN_IF_ERROR(t->AwaitHigherRanks(deadline));
  t->MakeSlots();
  SILK_RETURN_IF_ERROR(t->Start());
  return transport;
}

absl::Status ShmTransport::Listen(uint64_t job_id, const HandshakeParams& params, absl::Time deadline) {
  SILK_ASSIGN_OR_RETURN(ScopedFd listener, ListenLocal(SocketName(job_id, rank_)));
  acceptor_ = std::make_unique<Acceptor>(
      &loop_, std::move(listener), Acceptor::Options{"shared memory", options_.handshake_timeout},
      [this](const AcceptedConnection& from) {
        return from.resume ? absl::InvalidArgumentError("shared-memory links are not resumed") : Claim(from.rank);
      },
      // The segment follows the handshake at once; taking it blocks the loop
      // briefly, during set-up only, when the loop has no other work.
      [this, deadline](ScopedFd socket, AcceptedConnection from) {
        absl::StatusOr<Link> link =
            AcceptLink(std::move(socket), from.rank, std::min(deadline, absl::Now() + options_.handshake_timeout));
        if (!link.ok()) return link.status();
        Install(std::move(*link));
        return absl::OkStatus();
      });
  acceptor_->SetParams(params);
  return acceptor_->Start();
}

absl::Status ShmTransport::AwaitHigherRanks(absl::Time deadline) {
  const int expected = static_cast<int>(std::count_if(local_ranks_.begin(), local_ranks_.end(),
                                                      [this](int r) { return r > rank_; }));
  {
    absl::MutexLock lock(&setup_mu_);
    auto all = [&]() ABSL_SHARED_LOCKS_REQUIRED(setup_mu_) { return accepted_ == expected; };
    setup_mu_.AwaitWithDeadline(absl::Condition(&all), deadline);
  }
  if (acceptor_) acceptor_->Close();  // the name disappears with the listener: nobody else can knock
  absl::MutexLock lock(&setup_mu_);
  std::vector<int> missing;
  for (int peer : local_ranks_) {
    if (peer > rank_ && !peers_[peer]->linked) missing.push_back(peer);
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrFormat(
      "rank %d timed out waiting for ranks %s of its node to join by shared memory", rank_,
      absl::StrJoin(missing, ", ")));
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

void ShmTransport::MakeSlots() {
  if (local_ranks_.size() < 2) return;
  std::vector<SlotLane*> out(size_, nullptr), in(size_, nullptr);
  for (int r : local_ranks_) {
    if (r == rank_) continue;
    const int lane = rank_ < r ? 0 : 1;  // lane 0 carries the lower rank's slots
    out[r] = peers_[r]->segment.lane(lane);
    in[r] = peers_[r]->segment.lane(1 - lane);
  }
  slots_ = std::make_unique<ShmSlots>(
      rank_, std::move(out), std::move(in),
      // Failed only once the peers were told (as requests fail only after the sweep that follows).
      [this] { return peers_told_.load(); }, [this] { return status(); });
}

absl::Status ShmTransport::Start() {
  absl::Status started;
  loop_.RunSync([&] {
    for (auto& peer : peers_) {
      if (!peer->linked) continue;
      links_.push_back(peer.get());
      Peer* p = peer.get();
      p->socket_events = CallbackHandler([this, p](uint32_t) { ReadSocket(*p); });
      absl::Status added = loop_.Watch(p->socket.get(), EPOLLIN | EPOLLRDHUP, &p->socket_events);
      if (!added.ok() && started.ok()) started = Prefixed(added, absl::StrFormat("rank %d: ", p->rank));
    }
  });
  return started;
}

ShmTransport::~ShmTransport() {
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
  loop_.Stop();
  acceptor_.reset();
  // Requests nobody will complete any more (e.g. receives that were never matched).
  FailQueuedSends(peers_, ClosingStatus(), [](const SendOp&) { return true; });
  mailbox_.Close();
  // The peers' sockets close and their segments unmap with them.
}

// ---- data path ----

bool ShmTransport::reaches(int peer) const { return peer >= 0 && peer < size_ && peers_[peer]->local; }

absl::Status ShmTransport::CheckReach(int peer, const char* what) const {
  if (peers_[peer]->local) return absl::OkStatus();
  return InvalidArgument(absl::StrFormat("%s rank %d: it is on another node; shared memory reaches ranks [%s]", what,
                                         peer, absl::StrJoin(local_ranks_, ", ")));
}

void ShmTransport::Enqueue(int peer, const FrameHeader& header, const char* data, RequestPtr request) {
  auto op = std::make_shared<SendOp>();
  op->request = std::move(request);
  op->data = data;
  op->header = header;
  bool queued = false;
  QueueSend(*peers_[peer], std::move(op), [&] { queued = true; });
  if (!queued) return;
  work_generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst)) WakeProgress();
}

// ---- errors ----

void ShmTransport::FailConnections(const absl::Status& status) {
  TellPeers(status);
  peers_told_.store(true);
  if (slots_ != nullptr) slots_->WakeAll();  // a caller asleep on a slot sees the error now
  // An op being copied right now is completed by the progress thread once the copy is done.
  FailQueuedSends(peers_, status, [](const SendOp& op) { return !op.copying; });
}

void ShmTransport::WakeAfterFailure() {
  work_generation_.fetch_add(1, std::memory_order_seq_cst);
  WakeProgress();
}

void ShmTransport::WakeProgress() { loop_.Wake(); }

PeerCounters ShmTransport::counters(int peer) const {
  if (peer < 0 || peer >= size_) return {};
  PeerCounters counters{peers_[peer]->bytes_sent.load(), peers_[peer]->bytes_received.load()};
  if (slots_ != nullptr) {  // the calling-thread path's bytes count as this pair's too
    counters.bytes_sent += slots_->bytes_sent(peer);
    counters.bytes_received += slots_->bytes_received(peer);
  }
  return counters;
}

}  // namespace silk::transport::shm
