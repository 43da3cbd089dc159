#include "runtime/transport/event_loop.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"

namespace silk::transport {
namespace {

constexpr int kMaxEvents = 64;

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

EventLoop::EventLoop(std::string name) : name_(std::move(name)) {}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::AddTick(Tick tick) { ticks_.push_back(std::move(tick)); }

absl::Status EventLoop::Start(OnError on_error) {
  on_error_ = std::move(on_error);
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_.valid() || !wake_.valid()) {
    return absl::InternalError(absl::StrFormat("epoll/eventfd for %s: %s", name_, std::strerror(errno)));
  }
  if (absl::Status added = Control(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), EPOLLIN, nullptr); !added.ok()) {
    return added;
  }
  running_ = true;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void EventLoop::Stop() {
  stopping_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
  running_ = false;
  RunPosted();  // a RunSync caller that raced with Stop must not wait forever
}

absl::Status EventLoop::Watch(int fd, uint32_t events, Handler* handler) {
  return Control(epoll_.get(), EPOLL_CTL_ADD, fd, events, handler);
}

absl::Status EventLoop::Rewatch(int fd, uint32_t events, Handler* handler) {
  return Control(epoll_.get(), EPOLL_CTL_MOD, fd, events, handler);
}

void EventLoop::Unwatch(int fd) { epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::Wake() {
  if (!wake_.valid()) return;
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
  (void)ignored;
}

void EventLoop::Post(std::function<void()> fn) {
  {
    absl::MutexLock lock(&posted_mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void EventLoop::RunSync(const std::function<void()>& fn) {
  if (InLoopThread() || !running_.load()) {
    fn();
    return;
  }
  absl::Notification done;
  Post([&] {
    fn();
    done.Notify();
  });
  done.WaitForNotification();
}

int EventLoop::RunTicks() {
  int timeout = -1;
  for (const Tick& tick : ticks_) {
    const int wanted = tick();
    if (wanted == kNoWait) return kNoWait;
    if (wanted >= 0 && (timeout < 0 || wanted < timeout)) timeout = wanted;
  }
  return timeout;
}

void EventLoop::RunPosted() {
  std::vector<std::function<void()>> posted;
  {
    absl::MutexLock lock(&posted_mu_);
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
}

void EventLoop::Loop() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  epoll_event events[kMaxEvents];
  while (!stopping_.load()) {
    const int timeout = RunTicks();
    if (stopping_.load()) break;
    if (timeout == kNoWait) continue;
    const int n = epoll_wait(epoll_.get(), events, kMaxEvents, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (on_error_) on_error_(absl::InternalError(absl::StrFormat("epoll_wait in %s: %s", name_, std::strerror(errno))));
      break;
    }
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<Handler*>(events[i].data.ptr);
      if (handler == nullptr) {  // a Wake: drain the eventfd
        uint64_t count;
        while (::read(wake_.get(), &count, sizeof(count)) > 0) {
        }
        continue;
      }
      handler->OnEvents(events[i].events);
    }
    RunPosted();
  }
}

}  // namespace silk::transport
