#include "runtime/transport/poller.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace silk::transport {
namespace {

absl::Status Control(int epoll, int op, int fd, uint32_t events, void* tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = tag;
  if (epoll_ctl(epoll, op, fd, &ev) < 0) {
    return absl::InternalError(absl::StrFormat("epoll_ctl(%d) on fd %d: %s", op, fd, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Poller::Open() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_.valid() || !wake_.valid()) {
    return absl::InternalError(absl::StrFormat("epoll/eventfd: %s", std::strerror(errno)));
  }
  return Control(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), EPOLLIN, nullptr);
}

absl::Status Poller::Add(int fd, uint32_t events, void* tag) {
  return Control(epoll_.get(), EPOLL_CTL_ADD, fd, events, tag);
}

absl::Status Poller::Modify(int fd, uint32_t events, void* tag) {
  return Control(epoll_.get(), EPOLL_CTL_MOD, fd, events, tag);
}

void Poller::Remove(int fd) { epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void Poller::Wake() {
  if (!wake_.valid()) return;
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
  (void)ignored;
}

int Poller::Wait(epoll_event* events, int max, int timeout_ms) {
  int n = epoll_wait(epoll_.get(), events, max, timeout_ms);
  if (n <= 0) return n;
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == nullptr) {
      uint64_t count;
      while (::read(wake_.get(), &count, sizeof(count)) > 0) {
      }
      continue;
    }
    events[kept++] = events[i];
  }
  return kept;
}

}  // namespace silk::transport
