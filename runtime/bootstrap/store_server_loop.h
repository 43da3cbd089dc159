// The TCP store server's event loop: one thread, poll(), non-blocking
// sockets. All store state lives here and is touched only by Run()'s thread,
// so it needs no locks. TcpStoreServer owns the loop and its thread.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/bootstrap/output_queue.h"
#include "runtime/core/socket.h"
#include "runtime/bootstrap/store_protocol.h"
#include "runtime/core/log.h"

namespace silk::bootstrap {

class StoreServerLoop {
 public:
  // Takes a listening socket; `name` (e.g. "tcp-store server 0.0.0.0:29500")
  // prefixes log lines.
  static absl::StatusOr<std::unique_ptr<StoreServerLoop>> Create(ScopedFd listener, std::string name);

  // Serves until RequestStop(); then returns, leaving sockets to the destructor.
  void Run();
  // Callable from any thread; Run() returns promptly after it.
  void RequestStop();

 private:
  // A kGet parked until its keys exist; keys before `next_missing` exist.
  struct PendingGet {
    std::vector<std::string> keys;
    size_t next_missing = 0;
    absl::Time deadline;
  };
  struct Connection {
    ScopedFd fd;
    std::string peer;      // "ip:port", for log lines
    std::string in;        // received bytes not yet consumed
    OutputQueue out;       // reply bytes not yet sent
    std::optional<PendingGet> pending;
    bool peer_closed = false;
  };

  StoreServerLoop(ScopedFd listener, ScopedFd wake, std::string name);

  // A connection waits for its reply to be sent (or its get answered) before
  // its next request is read, so a client that never reads cannot grow `out`.
  static bool Blocked(const Connection& c) { return c.pending.has_value() || !c.out.empty(); }

  void AcceptAll();  // accepts the connections waiting (up to a bound)
  void HandleEvents(Connection& c, short revents);
  void ReadAvailable(Connection& c);
  // Handles whole frames buffered in `c.in` until blocked; true if it did anything.
  bool ProcessFrames(Connection& c);
  void Handle(Connection& c, wire::Request request);
  void HandleGet(Connection& c, wire::Request request);
  void HandleAdd(Connection& c, const std::string& key, int64_t delta);
  // Answers parked gets that waited for `key`.
  void WakeWaiters(const std::string& key);
  // Replies kOk with every value of `keys` (all exist), or kError when too large.
  void ReplyValues(Connection& c, const std::vector<std::string>& keys);
  // Replies `code` (kTimeout or kShutdown) with which of `keys` exist.
  void ReplyKeysFound(Connection& c, wire::ReplyCode code, const std::vector<std::string>& keys);
  void Reply(Connection& c, wire::ReplyCode code, const wire::FrameWriter& body);
  void Flush(Connection& c);
  void ReplyError(Connection& c, const std::string& message);
  // Closes `c` (removed from connections_ at the end of the loop iteration).
  void Drop(Connection& c, LogLevel level, const std::string& why);
  absl::Time NextDeadline() const;
  void ExpirePendingGets();
  // Tells parked gets which keys they were still missing, so their clients
  // can say more than "connection closed".
  void AnswerPendingGetsAtShutdown();

  const ScopedFd listener_;
  const ScopedFd wake_;  // eventfd written by RequestStop()
  const std::string name_;
  absl::Time accept_paused_until_ = absl::InfinitePast();
  std::vector<std::unique_ptr<Connection>> connections_;
  // Values are shared with the replies that are still sending them.
  absl::flat_hash_map<std::string, std::shared_ptr<const std::string>> data_;
};

}  // namespace silk::bootstrap
