// Silk's shared-memory transport, for the ranks of one node.
//
// Every pair of local ranks shares a segment with one ring per direction (see
// segment.h) and a Unix-domain socket (see link.h). Frames carry the same
// header as on TCP (operation, message index, offset, length, total, and the
// caller's OpDescriptor), so receives are matched, staged when they arrive
// first, and checked for mismatched calls exactly as there; a large message
// streams through the ring in pieces of `piece_bytes`.
//
// One progress thread (silk-shm) copies send buffers into the rings and frames
// out of them into the posted receive buffers; user threads only enqueue. When
// it has nothing to do it polls the rings a little longer (yielding its core:
// on a small node the ranks' own threads need it), then sleeps in epoll on the
// pairs' sockets and an eventfd; a peer that publishes into the ring of a
// sleeping consumer (or frees room for a sleeping producer) sends it one byte.
// Futexes in the segment would wake a little faster, but one thread could not
// wait on them and on the sockets (liveness) at once.
//
// Errors are those of TCP: sticky, and told to every local peer (an abort on
// the socket) before any request fails, so a process that exits on seeing the
// error still leaves its reason behind. A peer whose process ends without
// saying goodbye fails the transport at once, naming it (the frames it had
// published are delivered first, as TCP delivers bytes before the end). After
// a failure no request completes while the progress thread still copies into
// or out of its buffer.
//
// The pairs' segments also carry slots (slots.h): a calling-thread path for
// small collectives when every rank of the world is on this node
// (shared_slots()), and for the node phases of the region-aware ones
// (node_slots()).
//
// Ranks on other nodes are outside its reach: Send/Recv to them fail with
// InvalidArgument (route them elsewhere; see routed_transport.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/transport/socket.h"
#include "runtime/transport/acceptor.h"
#include "runtime/transport/message_transport.h"
#include "runtime/transport/event_loop.h"
#include "runtime/transport/shm/slots.h"
#include "runtime/transport/transport.h"

namespace silk::transport::shm {

struct ShmOptions {
  // Capacity of each ring (one per direction of each pair); a power of two.
  // Set by the higher rank of a pair.
  uint64_t ring_bytes = 4 << 20;
  // Largest payload of one frame: messages stream through the ring in pieces this big.
  uint64_t piece_bytes = 256 << 10;
  // How long the progress thread polls the rings after its last work before it sleeps.
  absl::Duration spin = absl::Microseconds(50);
  // Bound on one connection's authentication and segment exchange.
  absl::Duration handshake_timeout = absl::Seconds(10);
};

struct Link;
struct Peer;

class ShmTransport : public MessageTransport {
 public:
  // Joins this rank to the other ranks in `local_ranks` (this node's ranks,
  // this one included) before `deadline`: listens, connects to the lower ones,
  // accepts the higher ones, all authenticated with `token`.
  static absl::StatusOr<std::unique_ptr<ShmTransport>> Create(int rank, int size, const std::vector<int>& local_ranks,
                                                              uint64_t job_id, const std::string& token,
                                                              const ShmOptions& options, absl::Time deadline);
  ~ShmTransport() override;

  // Whether `peer` is on this node (this rank included).
  bool reaches(int peer) const;
  const std::vector<int>& local_ranks() const { return local_ranks_; }

  PeerCounters counters(int peer) const override;
  // Null unless every rank of the world is on this node.
  SharedSlots* shared_slots() override {
    return static_cast<int>(local_ranks_.size()) == size_ ? slots_.get() : nullptr;
  }
  SharedSlots* node_slots() override { return slots_.get(); }

  // Connections refused during set-up (wrong token, unknown rank, ...).
  int rejected_connections() const { return acceptor_ ? acceptor_->rejected() : 0; }
  const ShmOptions& options() const { return options_; }

 private:
  ShmTransport(int rank, int size, std::vector<int> local_ranks, const ShmOptions& options);

  // Set-up (shm_transport.cc).
  absl::Status Listen(uint64_t job_id, const HandshakeParams& params, absl::Time deadline);
  absl::Status Claim(int rank);
  void Install(Link&& link);
  absl::Status AwaitHigherRanks(absl::Time deadline);
  absl::Status Start();
  void MakeSlots();

  // Data path shared with user threads (shm_transport.cc).
  absl::Status CheckReach(int peer, const char* what) const override;
  void Enqueue(int peer, const FrameHeader& header, const char* data, RequestPtr request) override;
  // Tells every local peer why (bounded), before any request fails: a caller
  // that exits on seeing the error still leaves its reason behind. Then fails
  // the sends the progress thread is not copying.
  void FailConnections(const absl::Status& status) override;
  void WakeAfterFailure() override;  // it closes the sockets
  // Sends the abort to every local peer (bounded); the progress thread closes the sockets after.
  void TellPeers(const absl::Status& reason);
  void WakeProgress();

  // The progress loop (progress.cc): its tick moves frames, its handlers read the sockets.
  int Tick();
  bool PumpSend(Peer& peer);
  bool PumpRecv(Peer& peer, int max_frames);
  bool SayGoodbyes();
  bool ArmSleep(uint64_t generation);
  void DisarmSleep();
  void ReadSocket(Peer& peer);
  bool ParseControl(Peer& peer);
  void HandleGoodbye(Peer& peer);
  void PeerClosed(Peer& peer, const std::string& why);
  void CloseAfterFailure();
  void CloseSocket(Peer& peer);
  void WakePeer(Peer& peer);
  void SendControl(Peer& peer, const std::string& message, absl::Time deadline);

  const std::vector<int> local_ranks_;
  const ShmOptions options_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Peer*> links_;  // the linked peers, fixed once set-up ends
  std::unique_ptr<ShmSlots> slots_;  // fixed once set-up ends

  // Set-up.
  absl::Mutex setup_mu_;
  std::vector<bool> claimed_ ABSL_GUARDED_BY(setup_mu_);
  int accepted_ ABSL_GUARDED_BY(setup_mu_) = 0;

  std::atomic<bool> peers_told_{false};  // the abort is out: the sockets may close

  // Progress loop; it runs from set-up on (the acceptor's handshakes are its handlers).
  EventLoop loop_{"silk-shm"};
  std::unique_ptr<Acceptor> acceptor_;  // set-up only; destroyed after the loop stops
  std::atomic<uint64_t> work_generation_{0};  // bumped by every Send and Fail
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> saying_goodbye_{false};
  std::atomic<bool> goodbyes_done_{false};
  absl::Time goodbye_deadline_;  // written before saying_goodbye_ is set
  // Loop thread only.
  bool closed_after_failure_ = false;
  bool sleep_armed_ = false;
  absl::Time last_work_ = absl::Now();
  unsigned turns_ = 0;
};

}  // namespace silk::transport::shm
