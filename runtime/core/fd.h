// File descriptors, written once for every layer that opens sockets (the
// bootstrap's store, the TCP lanes, shared memory's pair sockets).
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace silk {

// Owns a file descriptor; closes it on destruction.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();  // gives up ownership
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

absl::Status SetNonBlocking(int fd, bool on = true);

// Milliseconds from now until `deadline` for poll(): 0 when passed, rounded
// up so a poll never wakes just before its deadline, capped to fit an int;
// -1 (wait forever) for absl::InfiniteFuture().
int PollTimeoutMs(absl::Time deadline);

}  // namespace silk
