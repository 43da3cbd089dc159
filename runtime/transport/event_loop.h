// The one I/O loop of the transports, written once: a thread waiting on an
// epoll set that calls the handler of each ready descriptor, and between
// waits the loop's ticks (work that is not a descriptor: shared-memory rings,
// failures to act on, deadlines). TCP lanes, the acceptor and its handshakes,
// and the shared-memory pair sockets are all handlers on such loops.
//
// Threads: Watch, Rewatch, Unwatch, Wake, Post and RunSync may be called from
// any thread. Handlers, ticks and posted functions run on the loop thread.
// A handler may be destroyed only on the loop thread outside OnEvents (from a
// tick or a posted function) after Unwatch, or once the loop has stopped.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "runtime/core/fd.h"

namespace silk::transport {

class EventLoop {
 public:
  class Handler {
   public:
    // `events`: the EPOLL* bits that are ready.
    virtual void OnEvents(uint32_t events) = 0;

   protected:
    ~Handler() = default;
  };

  // Runs before every wait; returns how long that wait may last in
  // milliseconds: -1 until an event or a Wake, or kNoWait to skip it (busy).
  // The loop waits for the shortest of its ticks' answers.
  using Tick = std::function<int()>;
  static constexpr int kNoWait = -2;
  // Called on the loop thread if the wait itself fails; the loop then stops.
  using OnError = std::function<void(const absl::Status&)>;

  explicit EventLoop(std::string name);  // the thread's name (15 characters at most)
  ~EventLoop();                          // Stop()
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Before Start only.
  void AddTick(Tick tick);
  absl::Status Start(OnError on_error);
  // Ends the thread (any thread but the loop's own); idempotent. Handlers,
  // ticks and posted functions are not called once it returns.
  void Stop();

  absl::Status Watch(int fd, uint32_t events, Handler* handler);
  absl::Status Rewatch(int fd, uint32_t events, Handler* handler);
  void Unwatch(int fd);

  // The loop's current (or next) wait returns at once.
  void Wake();
  // Runs `fn` on the loop thread after the current round of events.
  void Post(std::function<void()> fn);
  // Runs `fn` on the loop thread and returns when it has run: at once when
  // called from the loop thread, or the loop is not running.
  void RunSync(const std::function<void()>& fn);
  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void Loop();
  int RunTicks();
  void RunPosted();

  const std::string name_;
  ScopedFd epoll_;
  ScopedFd wake_;
  std::vector<Tick> ticks_;
  OnError on_error_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
  absl::Mutex posted_mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(posted_mu_);
};

// A handler that calls a function: for owners of several descriptors.
class CallbackHandler final : public EventLoop::Handler {
 public:
  CallbackHandler() = default;
  explicit CallbackHandler(std::function<void(uint32_t)> on_events) : on_events_(std::move(on_events)) {}
  void OnEvents(uint32_t events) override { on_events_(events); }

 private:
  std::function<void(uint32_t)> on_events_;
};

}  // namespace silk::transport
