// Accepts connections on a listening socket and runs the acceptor's side of
// the handshake (handshake.h) for each on an event loop, with no thread per
// connection. A stranger that connects and stays silent costs a descriptor
// until its deadline, never a thread; when too many are pending, the oldest
// goes first, so idle strangers cannot keep a rank's real peers out.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "runtime/core/fd.h"
#include "runtime/transport/event_loop.h"
#include "runtime/transport/handshake.h"

namespace silk::transport {

class Acceptor final : public EventLoop::Handler {
 public:
  struct Options {
    std::string what;  // "tcp", "shared memory": for logs
    absl::Duration handshake_timeout = absl::Seconds(10);
    int max_pending = 256;
    // From any one source address: its oldest pending connection goes first,
    // so one host cannot take every slot from the others.
    int max_pending_per_source = 32;
  };
  // Takes a connection that passed the handshake, on the loop thread. An
  // error is logged and counted as a rejection (the connection is closed).
  using OnAccepted = std::function<absl::Status(ScopedFd fd, AcceptedConnection from)>;

  Acceptor(EventLoop* loop, ScopedFd listener, Options options, HandshakeClaim claim, OnAccepted on_accepted);
  ~Acceptor();  // Close()

  // Watches the listener (any thread, once the loop runs).
  absl::Status Start();
  // The handshake's parameters: connections accepted before wait for them
  // (a rank knows its job's identity only once bootstrap has run). Any thread.
  void SetParams(const HandshakeParams& params);
  // Stops accepting; connections still in their handshake are dropped (and
  // counted as rejected). Any thread but a handler's.
  void Close();

  // Connections refused or dropped so far.
  int rejected() const { return rejected_.load(); }

  void OnEvents(uint32_t events) override;  // the listener

 private:
  struct Pending final : EventLoop::Handler {
    Acceptor* owner = nullptr;
    ScopedFd fd;
    std::string from;    // "1.2.3.4:5678", "pid 12"
    std::string source;  // `from` without the port: what the per-source limit counts
    absl::Time deadline;
    std::optional<HandshakeResponder> responder;  // made once the parameters are known
    bool done = false;                           // to be erased by the tick
    void OnEvents(uint32_t events) override { owner->Advance(*this, events); }
  };

  void Challenge(Pending& pending);
  void Advance(Pending& pending, uint32_t events);
  void Finish(Pending& pending, const absl::Status& why);
  // Makes room for one more connection from `source`: drops the oldest pending
  // one from it past the per-source limit, and the oldest of all past the total.
  void MakeRoom(const std::string& source);
  void Expire();
  void ArmTimer();
  // Erases finished connections after the current round of events, when no
  // event can still name them.
  void SweepLater();

  EventLoop* const loop_;
  ScopedFd listener_;
  const Options options_;
  const HandshakeClaim claim_;
  const OnAccepted on_accepted_;
  ScopedFd timer_;  // fires at the oldest pending connection's deadline
  CallbackHandler timer_handler_;
  std::optional<HandshakeParams> params_;  // loop thread
  std::list<std::unique_ptr<Pending>> pending_;  // loop thread; oldest first
  bool sweep_posted_ = false;                     // loop thread
  bool closed_ = false;                           // loop thread
  std::atomic<int> rejected_{0};
};

}  // namespace silk::transport
