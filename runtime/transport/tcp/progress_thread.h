// One event loop that owns a subset of the lanes and does all their I/O.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "runtime/transport/event_loop.h"
#include "runtime/transport/tcp/peer.h"
#include "runtime/transport/socket.h"

namespace silk::transport::tcp {

class TcpTransport;

class ProgressThread {
 public:
  ProgressThread(TcpTransport* transport, int index);
  ~ProgressThread();

  absl::Status Start();
  // Adds a connected, non-blocking lane (any thread).
  absl::Status Register(Lane* lane);
  // Turns write interest on or off; caller holds lane->peer->send_mu.
  void SetWriteInterest(Lane* lane, bool on);
  // Wakes the loop to look at the transport's state (failure, shutdown).
  void Wake();
  // Sends goodbye on every lane, waits (bounded) for the peers' side to close, stops.
  void Stop(absl::Time deadline);

  // The loop, for other handlers of the transport (its acceptor).
  EventLoop& loop() { return loop_; }
  // A lane's events (Lane::OnEvents).
  void HandleEvents(Lane* lane, uint32_t events);
  // Loop thread (post it): `fd`, connected and authenticated as a resumption
  // of `lane`, replaces its connection (lane_resume.cc).
  void Resume(Lane* lane, ScopedFd fd);

 private:
  int Tick();
  void QueueHeartbeats(absl::Time now);
  void HandleWritable(Lane* lane);
  void HandleReadable(Lane* lane);
  bool StartPiece(Lane* lane);
  void FinishPiece(Lane* lane);
  bool ReadHeader(Lane* lane);
  bool BeginPayload(Lane* lane);
  void FinishPayload(Lane* lane);
  void HandleControl(Lane* lane);
  void ReleaseAfterFailure(Lane* lane);
  void CloseLane(Lane* lane);
  void LaneError(Lane* lane, absl::Status status);

  // Resumable lanes (lane_resume.cc). Write/ReadResumption: true once the
  // stream itself may be written / read on the lane's current connection.
  bool WriteResumption(Lane* lane);
  ssize_t WriteOutsideFrames(Lane* lane, absl::string_view bytes, const char* what);
  bool ReadResumption(Lane* lane);
  void RecordSent(Lane* lane, const iovec* iov, int count, size_t bytes);
  void NoteReceived(Lane* lane, size_t bytes);
  void QueueAck(Lane* lane);
  bool StartAck(Lane* lane);  // under send_mu
  void TakeAck(Lane* lane);
  // The peer reads this lane's next frame where this side writes it: no
  // resumption under way (an abort frame may go out).
  static bool InStep(const Lane* lane);

  TcpTransport* const transport_;
  const int index_;
  EventLoop loop_;
  std::atomic<bool> saying_goodbye_{false};
  absl::Mutex lanes_mu_;
  std::vector<Lane*> lanes_ ABSL_GUARDED_BY(lanes_mu_);
  bool released_after_failure_ = false;  // loop thread only
  absl::Status deferred_failure_;        // loop thread only: see LaneError
  absl::Time deferred_deadline_;
  absl::Time next_liveness_check_;  // loop thread only
};

}  // namespace silk::transport::tcp
