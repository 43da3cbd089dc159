// The wait at the heart of every transport's I/O thread, written once: an
// epoll set plus an eventfd, so any thread can wake the one that waits.
// Wake-ups are drained inside Wait and never returned as events.
#pragma once

#include <sys/epoll.h>

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/core/fd.h"

namespace silk::transport {

class Poller {
 public:
  absl::Status Open();
  // Watches `fd` for `events`; Wait returns `tag` with them (never null).
  absl::Status Add(int fd, uint32_t events, void* tag);
  absl::Status Modify(int fd, uint32_t events, void* tag);
  void Remove(int fd);
  // Any thread: the next (or current) Wait returns.
  void Wake();
  // Up to `max` events within `timeout_ms` (-1: until woken); 0 when only
  // woken or timed out; -1 with errno on error (EINTR is retried by the caller's loop).
  int Wait(epoll_event* events, int max, int timeout_ms);

 private:
  ScopedFd epoll_;
  ScopedFd wake_;
};

}  // namespace silk::transport
