#include "runtime/transport/tcp/tcp_transport.h"

#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_join.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"
#include "runtime/transport/tcp/progress_thread.h"

namespace silk::transport::tcp {
namespace {

// Gives `lane` its replacement connection, on the lane's own loop.
void HandOver(Lane* lane, ScopedFd fd) {
  auto replacement = std::make_shared<ScopedFd>(std::move(fd));  // Post takes a copyable function
  ProgressThread* thread = lane->thread;
  thread->loop().Post([thread, lane, replacement] { thread->Resume(lane, std::move(*replacement)); });
}

}  // namespace

TcpTransport::TcpTransport(int rank, int size, const TcpOptions& options)
    : MessageTransport(rank, size, "tcp"), options_(options) {}

absl::StatusOr<std::unique_ptr<TcpTransport>> TcpTransport::Listen(int rank, int size, const TcpOptions& options) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrFormat("rank %d is outside a world of size %d", rank, size));
  }
  if (options.lanes < 1 || options.progress_threads < 1 || options.stripe_bytes == 0) {
    return absl::InvalidArgumentError("lanes, progress threads and stripe size must be positive");
  }
  std::unique_ptr<TcpTransport> transport(new TcpTransport(rank, size, options));
  SILK_ASSIGN_OR_RETURN(ScopedFd listener, ListenTcp(options.port, options.socket));
  transport->port_ = LocalPort(listener.get());
  for (int r = 0; r < size; ++r) {
    auto peer = std::make_unique<Peer>();
    peer->rank = r;
    transport->peers_.push_back(std::move(peer));  // lanes are made by Connect
  }
  transport->monitor_ = std::make_unique<LinkMonitor>(size, options.outage_after, options.outage_tolerance,
                                                     options.outage_ends_waits);
  int threads = std::min(options.progress_threads, std::max(1, size - 1));
  for (int i = 0; i < threads; ++i) {
    transport->threads_.push_back(std::make_unique<ProgressThread>(transport.get(), i));
    SILK_RETURN_IF_ERROR(transport->threads_.back()->Start());
  }
  TcpTransport* t = transport.get();
  t->acceptor_ = std::make_unique<Acceptor>(
      &t->threads_[0]->loop(), std::move(listener), Acceptor::Options{"tcp", options.handshake_timeout},
      [t](const AcceptedConnection& from) { return t->Claim(from); },
      [t](ScopedFd fd, AcceptedConnection from) {
        return from.resume ? t->ResumeLane(from.rank, from.lane, std::move(fd))
                           : t->InstallLane(from.rank, from.lane, std::move(fd));
      });
  SILK_RETURN_IF_ERROR(t->acceptor_->Start());
  return transport;
}

TcpTransport::~TcpTransport() { Shutdown(); }

void TcpTransport::Shutdown() {
  stopping_ = true;
  if (acceptor_) acceptor_->Close();
  {
    absl::MutexLock lock(&redial_mu_);
    for (Redialer& r : redialers_) r.thread.join();  // each attempt is bounded
    redialers_.clear();
  }
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  for (auto& thread : threads_) {
    if (failed()) thread->Wake();
    thread->Stop(failed() ? absl::Now() : deadline);
  }
  acceptor_.reset();  // after its loop has stopped
  threads_.clear();
  // Requests nobody will complete any more (e.g. receives that were never matched).
  FailQueuedSends(peers_, ClosingStatus(), [](const SendOp&) { return true; });
  mailbox_.Close();
}

int TcpTransport::rejected_connections() const { return acceptor_ ? acceptor_->rejected() : 0; }

// ---- connection set-up ----

absl::Status TcpTransport::Claim(const AcceptedConnection& from) {
  const int rank = from.rank, lane = from.lane;
  if (rank <= rank_) {
    return absl::InvalidArgumentError(absl::StrFormat("rank %d must be connected to by rank %d, not connect", rank, rank_));
  }
  absl::MutexLock lock(&state_mu_);
  if (lane >= static_cast<int>(peers_[rank]->lanes.size())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rank %d has %d lanes to this rank, not %d", rank, peers_[rank]->lanes.size(), lane + 1));
  }
  // `thread` is set once, when the lane is installed (the descriptor itself
  // changes when a lane is resumed).
  const bool installed = peers_[rank]->lanes[lane]->thread != nullptr;
  if (from.resume) {
    if (!peers_[rank]->monitored) {
      return absl::InvalidArgumentError(
          absl::StrFormat("rank %d lane %d is not across a monitored link: it is not resumed", rank, lane));
    }
    if (!installed) {
      return absl::FailedPreconditionError(absl::StrFormat("rank %d lane %d was never connected", rank, lane));
    }
    return absl::OkStatus();
  }
  if (installed) {
    return absl::AlreadyExistsError(absl::StrFormat("rank %d lane %d is already connected", rank, lane));
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::InstallLane(int peer, int lane_index, ScopedFd fd) {
  Lane* lane;
  {
    absl::MutexLock lock(&state_mu_);
    lane = peers_[peer]->lanes[lane_index].get();
    if (lane->thread != nullptr) {
      return absl::AlreadyExistsError(absl::StrFormat("rank %d lane %d is already connected", peer, lane_index));
    }
    SILK_RETURN_IF_ERROR(SetNonBlocking(fd.get(), true));
    // Accepted sockets start with the listener's options; give them this peer's.
    SILK_RETURN_IF_ERROR(ApplySocketOptions(fd.get(), peer_socket_[peer]));
    lane->address = PeerAddress(fd.get());
    lane->fd = std::move(fd);
    lane->thread = threads_[lanes_assigned_++ % threads_.size()].get();
  }
  SILK_RETURN_IF_ERROR(lane->thread->Register(lane));
  // Counted only now: Connect() returns, and sends start, once every lane is in its epoll set.
  absl::MutexLock lock(&state_mu_);
  lanes_installed_++;
  return absl::OkStatus();
}

absl::Status TcpTransport::Connect(const std::vector<PeerEndpoint>& endpoints, uint64_t job_id,
                                   const std::string& token, absl::Time deadline) {
  if (static_cast<int>(endpoints.size()) != size_) {
    return absl::InvalidArgumentError(absl::StrFormat("%d endpoints for a world of %d", endpoints.size(), size_));
  }
  {
    absl::MutexLock lock(&state_mu_);
    int most_lanes = 1;
    peer_socket_.assign(size_, options_.socket);
    for (int peer = 0; peer < size_; ++peer) {
      if (peer == rank_) continue;
      const PeerEndpoint& e = endpoints[peer];
      const int lanes = e.lanes > 0 ? e.lanes : options_.lanes;
      if (e.socket) peer_socket_[peer] = *e.socket;
      if (!e.link.empty()) Monitor(peer, e.link);
      for (int l = 0; l < lanes; ++l) {
        auto lane = std::make_unique<Lane>();
        lane->peer = peers_[peer].get();
        lane->index = l;
        peers_[peer]->lanes.push_back(std::move(lane));
      }
      lanes_expected_ += lanes;
      most_lanes = std::max(most_lanes, lanes);
    }
    endpoints_ = endpoints;
    handshake_.job_id = job_id;
    handshake_.token = token;
    handshake_.rank = rank_;
    handshake_.world_size = size_;
    handshake_.lanes = most_lanes;
  }
  const HandshakeParams params = handshake_;  // fixed from here on
  acceptor_->SetParams(params);
  // Each rank connects to the ranks below it and accepts the ranks above it.
  for (int peer = 0; peer < rank_; ++peer) {
    const PeerEndpoint& to = endpoints[peer];
    for (int lane = 0; lane < static_cast<int>(peers_[peer]->lanes.size()); ++lane) {
      auto fd = ConnectTcp(to.host, to.port, PeerSocket(peer), deadline);
      absl::Status status = fd.status();
      if (status.ok()) status = ClientHandshake(fd->get(), params, peer, lane, deadline);
      if (status.ok()) status = InstallLane(peer, lane, std::move(*fd));
      if (!status.ok()) {
        return absl::Status(status.code(), absl::StrFormat("connecting rank %d to rank %d at %s:%d (lane %d): %s",
                                                           rank_, peer, to.host, to.port, lane, status.message()));
      }
    }
  }
  absl::MutexLock lock(&state_mu_);
  auto all = [&]() ABSL_SHARED_LOCKS_REQUIRED(state_mu_) { return lanes_installed_ == lanes_expected_; };
  if (!state_mu_.AwaitWithDeadline(absl::Condition(&all), deadline)) {
    std::vector<std::string> missing;
    for (int peer = rank_ + 1; peer < size_; ++peer) {
      int got = 0;
      for (auto& lane : peers_[peer]->lanes) got += lane->fd.valid() ? 1 : 0;
      int want = static_cast<int>(peers_[peer]->lanes.size());
      if (got < want) missing.push_back(absl::StrFormat("rank %d (%d of %d lanes)", peer, got, want));
    }
    return absl::DeadlineExceededError(absl::StrFormat("rank %d timed out waiting for connections from %s", rank_,
                                                       absl::StrJoin(missing, ", ")));
  }
  return absl::OkStatus();
}

absl::Status TcpTransport::ResumeLane(int peer, int lane_index, ScopedFd fd) {
  Lane* lane = peers_[peer]->lanes[lane_index].get();  // installed: Claim checked
  SILK_RETURN_IF_ERROR(SetNonBlocking(fd.get(), true));
  SILK_RETURN_IF_ERROR(ApplySocketOptions(fd.get(), PeerSocket(peer)));
  HandOver(lane, std::move(fd));
  return absl::OkStatus();
}

void TcpTransport::RedialSilentPeers() {
  // Only once the silence has lasted twice the detection time: a link declared
  // down by a loaded machine's late heartbeats is usually heard again by then,
  // and a connection replaced for nothing starts again from a small window.
  std::vector<int> silent = monitor_->SilentPeers(absl::Now(), 2 * options_.outage_after);
  if (silent.empty()) return;
  const absl::Time recent = absl::Now() - options_.outage_after;
  absl::MutexLock lock(&redial_mu_);
  for (auto it = redialers_.begin(); it != redialers_.end();) {  // reap the finished
    if (it->done->load()) {
      it->thread.join();
      it = redialers_.erase(it);
    } else {
      ++it;
    }
  }
  for (int peer : silent) {
    if (peer < rank_) StartRedial(peer, recent);  // the higher rank dials, as at start-up
  }
}

void TcpTransport::StartRedial(int peer, absl::Time recent) {
  // Under redial_mu_: once Shutdown has joined the redialling threads, none starts.
  if (stopping_) return;
  for (auto& lane : peers_[peer]->lanes) {
    // A replacement just handed over needs a round trip to be heard.
    if (lane->thread == nullptr || lane->redialed_ns.load() > absl::ToUnixNanos(recent)) continue;
    if (lane->reconnecting.exchange(true)) continue;
    auto done = std::make_shared<std::atomic<bool>>(false);
    redialers_.push_back(Redialer{std::thread([this, l = lane.get(), done] {
                                    Redial(l);
                                    done->store(true);
                                  }),
                                  done});
  }
}

void TcpTransport::ReplaceConnections(int peer) {
  if (peer < 0 || peer >= rank_ || !peers_[peer]->monitored) return;
  absl::MutexLock lock(&redial_mu_);
  StartRedial(peer, absl::InfiniteFuture());
}

int TcpTransport::resumed_lanes(int peer) const {
  int resumed = 0;
  if (peer < 0 || peer >= size_) return resumed;
  for (const auto& lane : peers_[peer]->lanes) resumed += lane->resumed.load();
  return resumed;
}

void TcpTransport::Redial(Lane* lane) {
  // Short attempts: a SYN lost in the cut is not retried by TCP for a second;
  // a fresh one goes out with the next attempt.
  constexpr absl::Duration kRedialAttempt = absl::Milliseconds(200);
  constexpr absl::Duration kResumeHandshake = absl::Seconds(3);
  const int peer = lane->peer->rank;
  const PeerEndpoint& to = endpoints_[peer];
  while (!stopping_ && !failed()) {
    const absl::Time attempt = absl::Now();
    absl::StatusOr<ScopedFd> fd = ConnectTcp(to.host, to.port, PeerSocket(peer), attempt + kRedialAttempt);
    absl::Status status = fd.status();
    if (status.ok()) {
      status = ClientHandshake(fd->get(), handshake_, peer, lane->index, absl::Now() + kResumeHandshake,
                               /*resume=*/true);
    }
    if (status.ok()) status = SetNonBlocking(fd->get(), true);
    if (status.ok()) {
      HandOver(lane, std::move(*fd));
      lane->redialed_ns = absl::GetCurrentTimeNanos();
      break;
    }
    Log(LogLevel::kDebug, "redialling rank %d (lane %d) at %s:%d: %s", peer, lane->index, to.host, to.port,
        status.message());
    absl::SleepFor(attempt + kRedialAttempt - absl::Now());
  }
  lane->reconnecting = false;
}

void TcpTransport::Monitor(int peer, const std::string& link) {
  monitor_->AddLink(link, {peer});
  peers_[peer]->monitored = true;
  SocketOptions& socket = peer_socket_[peer];
  // Retransmit at least every second, so that a healed link carries traffic
  // again within a second rather than after TCP's doubling back-off; keep the
  // connection through a cut as long as the outage tolerance lets waits last.
  if (socket.rto_max_ms == 0) socket.rto_max_ms = 1000;
  if (socket.user_timeout_ms == 0) {
    socket.user_timeout_ms = static_cast<int>(
        std::min<int64_t>(absl::ToInt64Milliseconds(options_.outage_tolerance + absl::Seconds(30)), INT32_MAX));
  }
}

absl::Time TcpTransport::StretchDeadline(absl::Time started, absl::Time deadline) const {
  return monitor_->StretchDeadline(started, deadline, options_.heartbeat);
}

absl::Status TcpTransport::OutageError() const { return monitor_->OutageError(); }

// ---- data path ----

void TcpTransport::Enqueue(int peer, const FrameHeader& header, const char* data, RequestPtr request) {
  auto op = std::make_shared<SendOp>();
  op->request = std::move(request);
  op->data = data;
  op->header = header;
  op->pieces_total = header.total == 0 ? 1 : (header.total + options_.stripe_bytes - 1) / options_.stripe_bytes;
  Peer& p = *peers_[peer];
  QueueSend(p, std::move(op), [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // under p.send_mu
    for (auto& lane : p.lanes) {
      if (!lane->want_write && !lane->closed && lane->thread != nullptr) lane->thread->SetWriteInterest(lane.get(), true);
    }
  });
}

// ---- errors ----

void TcpTransport::FailConnections(const absl::Status& status) {
  FailQueuedSends(peers_, status, [](const SendOp& op) { return op.pieces_in_flight == 0; });
}

void TcpTransport::WakeAfterFailure() {
  for (auto& thread : threads_) thread->Wake();
}

PeerCounters TcpTransport::counters(int peer) const {
  if (peer < 0 || peer >= size_) return {};
  return PeerCounters{peers_[peer]->bytes_sent.load(), peers_[peer]->bytes_received.load()};
}

void TcpTransport::BeginPacing(int peer, uint64_t bytes_per_s) {
  if (peer < 0 || peer >= size_ || peer == rank_) return;
  Peer& p = *peers_[peer];
  if (p.lanes.empty()) return;
  absl::MutexLock lock(&p.pacing_mu);
  p.pacing_holders++;
  const uint64_t per_lane = std::max<uint64_t>(bytes_per_s / p.lanes.size(), 1);
  p.pacing_per_lane = per_lane;
  // Descriptors stay open until the transport goes (see CloseLane), so this
  // cannot touch a reused number; a failed call only leaves the lane unpaced.
  for (const auto& lane : p.lanes) {
    if (lane->fd.valid()) SetMaxPacingRate(lane->fd.get(), per_lane).IgnoreError();
  }
}

SocketOptions TcpTransport::PeerSocket(int peer) const {
  absl::MutexLock lock(&state_mu_);
  return peer < 0 || peer >= static_cast<int>(peer_socket_.size()) ? options_.socket : peer_socket_[peer];
}

absl::Status TcpTransport::SetPeerSocketBuffer(int peer, size_t bytes) {
  if (peer < 0 || peer >= size_ || peer == rank_ || bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rank %d: socket buffers of %d bytes for rank %d of %d", rank_, bytes, peer, size_));
  }
  {
    absl::MutexLock lock(&state_mu_);
    if (peer_socket_.empty()) return absl::FailedPreconditionError("socket buffers set before Connect");
    peer_socket_[peer].buffer_bytes = bytes;
  }
  Peer& p = *peers_[peer];
  absl::MutexLock lock(&p.pacing_mu);  // a resumed lane's descriptor changes under it
  for (const auto& lane : p.lanes) {
    if (lane->fd.valid()) SetSocketBuffers(lane->fd.get(), bytes);
  }
  return absl::OkStatus();
}

void TcpTransport::EndPacing(int peer) {
  if (peer < 0 || peer >= size_ || peer == rank_) return;
  Peer& p = *peers_[peer];
  absl::MutexLock lock(&p.pacing_mu);
  if (p.pacing_holders == 0 || --p.pacing_holders > 0) return;
  p.pacing_per_lane = 0;
  for (const auto& lane : p.lanes) {
    if (lane->fd.valid()) SetMaxPacingRate(lane->fd.get(), 0).IgnoreError();
  }
}

std::vector<uint64_t> TcpTransport::LanePacingRates(int peer) const {
  std::vector<uint64_t> rates;
  if (peer < 0 || peer >= size_) return rates;
  absl::MutexLock lock(&peers_[peer]->pacing_mu);  // a resumed lane's descriptor changes under it
  for (const auto& lane : peers_[peer]->lanes) {
    unsigned long rate = 0;
    socklen_t length = sizeof(rate);
    if (!lane->fd.valid() || getsockopt(lane->fd.get(), SOL_SOCKET, SO_MAX_PACING_RATE, &rate, &length) < 0) rate = 0;
    rates.push_back(rate);
  }
  return rates;
}

std::vector<int> TcpTransport::LaneReceiveBuffers(int peer) const {
  std::vector<int> sizes;
  if (peer < 0 || peer >= size_) return sizes;
  absl::MutexLock lock(&peers_[peer]->pacing_mu);  // a resumed lane's descriptor changes under it
  for (const auto& lane : peers_[peer]->lanes) {
    int bytes = 0;
    socklen_t length = sizeof(bytes);
    if (!lane->fd.valid() || getsockopt(lane->fd.get(), SOL_SOCKET, SO_RCVBUF, &bytes, &length) < 0) bytes = 0;
    sizes.push_back(bytes);
  }
  return sizes;
}

std::vector<uint64_t> TcpTransport::LaneBytesSent(int peer) const {
  std::vector<uint64_t> bytes;
  if (peer < 0 || peer >= size_) return bytes;
  for (const auto& lane : peers_[peer]->lanes) bytes.push_back(lane->payload_bytes_sent.load());
  return bytes;
}

}  // namespace silk::transport::tcp
