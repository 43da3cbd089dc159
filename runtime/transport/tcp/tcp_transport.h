// Silk's TCP transport: every pair of ranks is joined by `lanes` parallel
// connections, driven by epoll progress threads.
//
// Sending: a message is queued on its peer; each lane, when its socket can take
// more, pulls the next piece (at most `stripe_bytes`) of the oldest message, so
// fast lanes carry more and one window-limited TCP flow never caps the pair.
// Receiving: frames are placed by offset straight into the posted buffer, or
// staged until the receive is posted.
//
// Life cycle: Listen() opens the port (publish it through bootstrap), then
// Connect() joins every peer with authenticated connections; the listener stays
// open so that stray connections are rejected and logged, never accepted.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/transport/acceptor.h"
#include "runtime/transport/message_transport.h"
#include "runtime/transport/frame.h"
#include "runtime/transport/handshake.h"
#include "runtime/transport/link_monitor.h"
#include "runtime/transport/socket.h"
#include "runtime/transport/transport.h"

namespace silk::transport::tcp {

struct TcpOptions {
  int lanes = 2;  // default per peer; PeerEndpoint::lanes overrides
  int progress_threads = 2;
  size_t stripe_bytes = 256 << 10;
  SocketOptions socket;  // default per peer; the listener uses it for accepted sockets' set-up
  uint16_t port = 0;
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Liveness of the long links (PeerEndpoint::link; link_monitor.h): an idle
  // lane to a peer across one sends a heartbeat this often; a link none of
  // whose peers was heard for `outage_after` is down; waits stretch by an
  // outage's length, up to `outage_tolerance`, before failing with it named.
  absl::Duration heartbeat = absl::Milliseconds(250);
  absl::Duration outage_after = absl::Seconds(1);
  absl::Duration outage_tolerance = absl::Minutes(3);
  // An outage past its tolerance ends waits whose own deadline is later (elastic jobs).
  bool outage_ends_waits = false;
};

struct PeerEndpoint {
  std::string host;
  uint16_t port = 0;
  // Per-peer overrides (e.g. more lanes and BBR across a WAN); 0 / unset: TcpOptions'.
  int lanes = 0;
  std::optional<SocketOptions> socket;
  // The long link this peer is reached across ("WAN xinjiang<->chongqing"):
  // monitored, with heartbeats, short retransmission back-off and a user
  // timeout past the outage tolerance. Empty: a local peer.
  std::string link;
};

class ProgressThread;
struct Lane;
struct Peer;

class TcpTransport : public MessageTransport {
 public:
  static absl::StatusOr<std::unique_ptr<TcpTransport>> Listen(int rank, int size, const TcpOptions& options);
  ~TcpTransport() override;

  uint16_t port() const { return port_; }
  // Joins every peer; `endpoints` is indexed by rank (this rank's entry unused).
  absl::Status Connect(const std::vector<PeerEndpoint>& endpoints, uint64_t job_id, const std::string& token,
                       absl::Time deadline);

  PeerCounters counters(int peer) const override;
  absl::Time StretchDeadline(absl::Time started, absl::Time deadline) const override;
  absl::Status OutageError() const override;
  // Splits the rate evenly over the peer's lanes (SO_MAX_PACING_RATE).
  void BeginPacing(int peer, uint64_t bytes_per_s) override;
  void EndPacing(int peer) override;

  // Gives every lane to `peer`, and each connection that later replaces one,
  // socket buffers of `bytes` (after Connect: e.g. once the link is measured).
  absl::Status SetPeerSocketBuffer(int peer, size_t bytes);
  // The socket options of the lanes to `peer`.
  SocketOptions PeerSocket(int peer) const;
  // Each lane's SO_RCVBUF as the kernel reports it (twice what was asked; for tests).
  std::vector<int> LaneReceiveBuffers(int peer) const;
  // Payload bytes each lane to `peer` has carried (shows the striping).
  std::vector<uint64_t> LaneBytesSent(int peer) const;
  // Each lane's SO_MAX_PACING_RATE as the kernel reports it (for tests).
  std::vector<uint64_t> LanePacingRates(int peer) const;
  // Dials a replacement for every lane to `peer` now, as while a link is
  // down (tests: the streams must go on exactly). Only for a monitored peer
  // this rank dials (peer < rank).
  void ReplaceConnections(int peer);
  // How many times lanes to `peer` have moved to a replacement connection.
  int resumed_lanes(int peer) const;
  // Connections rejected by the handshake so far (for tests and logs).
  int rejected_connections() const;
  const TcpOptions& options() const { return options_; }

 private:
  friend class ProgressThread;
  TcpTransport(int rank, int size, const TcpOptions& options);

  absl::Status Claim(const AcceptedConnection& from);  // may it connect now?
  // Connect, before any lane: `peer` is across the long link `link`.
  void Monitor(int peer, const std::string& link) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  absl::Status InstallLane(int peer, int lane, ScopedFd fd);
  // Lanes to monitored peers outlive their connections (peer.h): while a link
  // is down, this rank dials a replacement for each lane it dialled at first
  // (RedialSilentPeers, from the checking progress thread), every
  // kRedialAttempt, until one connects and passes the handshake as a
  // resumption; the accepting side takes it in ResumeLane. Redialling starts
  // once a link has been silent for twice `outage_after`.
  void RedialSilentPeers();
  // Starts a redialling thread for each lane to `peer` that has none and has
  // handed no replacement over since `recent`.
  void StartRedial(int peer, absl::Time recent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(redial_mu_);
  void Redial(Lane* lane);
  absl::Status ResumeLane(int peer, int lane, ScopedFd fd);
  void Enqueue(int peer, const FrameHeader& header, const char* data, RequestPtr request) override;
  // Fails the sends no lane is touching; the progress threads, woken, release
  // the rest and tell the peers why before they close the lanes.
  void FailConnections(const absl::Status& status) override;
  void WakeAfterFailure() override;
  void Shutdown();

  const TcpOptions options_;
  HandshakeParams handshake_;  // written by Connect before the acceptor sees it
  uint16_t port_ = 0;

  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<ProgressThread>> threads_;

  mutable absl::Mutex state_mu_;
  int lanes_installed_ ABSL_GUARDED_BY(state_mu_) = 0;
  int lanes_expected_ ABSL_GUARDED_BY(state_mu_) = 0;
  int lanes_assigned_ ABSL_GUARDED_BY(state_mu_) = 0;  // round-robin over progress threads
  // Set by Connect; later only SetPeerSocketBuffer changes it (read through PeerSocket).
  std::vector<SocketOptions> peer_socket_ ABSL_GUARDED_BY(state_mu_);
  std::unique_ptr<Acceptor> acceptor_;  // on the first progress thread's loop
  std::unique_ptr<LinkMonitor> monitor_;  // links added by Connect, checked by the first progress thread
  std::vector<PeerEndpoint> endpoints_;   // fixed once Connect starts

  struct Redialer {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::atomic<bool> stopping_{false};
  absl::Mutex redial_mu_;
  std::vector<Redialer> redialers_ ABSL_GUARDED_BY(redial_mu_);
};

}  // namespace silk::transport::tcp
