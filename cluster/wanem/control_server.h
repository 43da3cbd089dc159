// The emulator's control socket: a Unix stream socket served from the
// emulator's own event loop (no extra thread touches the link state). Each
// client sends one command line and gets one reply line; a client that does
// not finish its line within kClientTimeout is disconnected.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"

namespace silk::cluster::wanem {

class ControlServer {
 public:
  using Handler = std::function<std::string(absl::string_view line)>;
  static constexpr int64_t kClientTimeoutNs = 2'000'000'000;
  static constexpr size_t kMaxClients = 32;
  static constexpr size_t kMaxLineBytes = 4096;

  explicit ControlServer(Handler handler) : handler_(std::move(handler)) {}
  ~ControlServer();

  // Binds `path` (replacing a stale socket file) and registers with `epoll_fd`,
  // tagging its events with `tag` in the upper 32 bits of epoll_event.data.u64.
  absl::Status Listen(const std::string& path, int epoll_fd, uint32_t tag);

  // Handles an event for `fd` (the listener or a client).
  void OnEvent(int fd, int64_t now_ns);
  // Disconnects clients that are too slow; returns the next expiry (or INT64_MAX).
  int64_t ExpireClients(int64_t now_ns);

 private:
  struct Client {
    int fd;
    int64_t deadline_ns;
    std::string line;
  };
  void Accept(int64_t now_ns);
  void Close(size_t index);

  Handler handler_;
  std::string path_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  uint32_t tag_ = 0;
  std::vector<Client> clients_;
};

}  // namespace silk::cluster::wanem
