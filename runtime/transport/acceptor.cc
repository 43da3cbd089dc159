#include "runtime/transport/acceptor.h"

#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/log.h"
#include "runtime/transport/socket.h"

namespace silk::transport {
namespace {

// Sends all of a handshake message at once. A freshly accepted socket's
// buffer holds far more than one (at most 4 KiB), so a short write means the
// connection is unusable, never that the loop should wait.
absl::Status SendNow(int fd, const std::string& bytes) {
  ssize_t n;
  do {
    n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(bytes.size())) return absl::OkStatus();
  return absl::UnavailableError(n < 0 ? absl::StrFormat("send: %s", std::strerror(errno))
                                      : std::string("the socket took only part of a handshake message"));
}

}  // namespace

Acceptor::Acceptor(EventLoop* loop, ScopedFd listener, Options options, HandshakeClaim claim, OnAccepted on_accepted)
    : loop_(loop),
      listener_(std::move(listener)),
      options_(std::move(options)),
      claim_(std::move(claim)),
      on_accepted_(std::move(on_accepted)),
      timer_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)),
      timer_handler_([this](uint32_t) { Expire(); }) {}

Acceptor::~Acceptor() { Close(); }

absl::Status Acceptor::Start() {
  if (!timer_.valid()) return absl::InternalError(absl::StrFormat("timerfd_create: %s", std::strerror(errno)));
  if (absl::Status watched = loop_->Watch(timer_.get(), EPOLLIN, &timer_handler_); !watched.ok()) return watched;
  return loop_->Watch(listener_.get(), EPOLLIN, this);
}

void Acceptor::SetParams(const HandshakeParams& params) {
  loop_->RunSync([&] {
    params_ = params;
    for (auto& pending : pending_) {
      if (!pending->done && !pending->responder) Challenge(*pending);
    }
  });
}

void Acceptor::Close() {
  loop_->RunSync([this] {
    if (closed_) return;
    closed_ = true;
    if (listener_.valid()) loop_->Unwatch(listener_.get());
    if (timer_.valid()) loop_->Unwatch(timer_.get());
    listener_.reset();
    for (auto& pending : pending_) {
      if (pending->done) continue;
      loop_->Unwatch(pending->fd.get());
      rejected_++;
      Log(LogLevel::kInfo, "%s: dropped connection from %s: still in its handshake when accepting ended",
          options_.what, pending->from);
    }
    pending_.clear();  // runs outside any round of events: nothing can name them any more
  });
}

void Acceptor::OnEvents(uint32_t) {
  while (!closed_) {
    ScopedFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;  // EAGAIN, or an error the next readiness reports again
    std::string from = PeerAddress(fd.get());
    std::string source = from.substr(0, from.rfind(':'));
    MakeRoom(source);
    auto pending = std::make_unique<Pending>();
    pending->owner = this;
    pending->from = std::move(from);
    pending->source = std::move(source);
    pending->fd = std::move(fd);
    pending->deadline = absl::Now() + options_.handshake_timeout;
    if (absl::Status watched = loop_->Watch(pending->fd.get(), EPOLLIN | EPOLLRDHUP, pending.get()); !watched.ok()) {
      rejected_++;
      Log(LogLevel::kWarning, "%s: rejected connection from %s: %s", options_.what, pending->from, watched.message());
      continue;
    }
    Pending& added = *pending;
    pending_.push_back(std::move(pending));
    if (params_) Challenge(added);
    ArmTimer();
  }
}

void Acceptor::MakeRoom(const std::string& source) {
  int live = 0, from_source = 0;
  for (auto& pending : pending_) {
    if (pending->done) continue;
    live++;
    from_source += pending->source == source ? 1 : 0;
  }
  for (auto& pending : pending_) {  // oldest first
    if (pending->done) continue;
    if (from_source >= options_.max_pending_per_source && pending->source == source) {
      Finish(*pending, absl::ResourceExhaustedError(absl::StrFormat(
                           "dropped: %d connections from %s were in their handshake, this was the oldest",
                           options_.max_pending_per_source, source)));
      return;
    }
    if (from_source < options_.max_pending_per_source && live >= options_.max_pending) {
      Finish(*pending, absl::ResourceExhaustedError(absl::StrFormat(
                           "dropped: %d connections were in their handshake, this was the oldest",
                           options_.max_pending)));
      return;
    }
  }
}

void Acceptor::Challenge(Pending& pending) {
  pending.responder.emplace(*params_);
  absl::Status sent = SendNow(pending.fd.get(), pending.responder->challenge());
  if (!sent.ok()) Finish(pending, sent);
}

void Acceptor::Advance(Pending& pending, uint32_t events) {
  if (pending.done) return;
  if (!pending.responder) {  // nothing was asked yet: only an end is news
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      Finish(pending, absl::UnavailableError("closed before the handshake began"));
    }
    return;
  }
  char buffer[4096];
  while (!pending.done) {
    const size_t wanted = std::min(sizeof(buffer), pending.responder->wanted());
    ssize_t n = ::recv(pending.fd.get(), buffer, wanted, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      Finish(pending, absl::UnavailableError(n == 0 ? std::string("closed during the handshake")
                                                    : absl::StrFormat("recv: %s", std::strerror(errno))));
      return;
    }
    std::optional<HandshakeResponder::Outcome> outcome =
        pending.responder->Take(absl::string_view(buffer, static_cast<size_t>(n)), claim_);
    if (!outcome) continue;
    absl::Status status = outcome->result.status();
    if (!outcome->reply.empty()) {
      absl::Status sent = SendNow(pending.fd.get(), outcome->reply);
      if (status.ok()) status = sent;  // a refusal's answer is best effort
    }
    if (status.ok()) {
      loop_->Unwatch(pending.fd.get());
      pending.done = true;
      SweepLater();
      status = on_accepted_(std::move(pending.fd), *outcome->result);
      if (status.ok()) return;
      rejected_++;
      Log(LogLevel::kWarning, "%s: rejected connection from %s: %s", options_.what, pending.from, status.message());
      return;
    }
    Finish(pending, status);
  }
}

void Acceptor::Finish(Pending& pending, const absl::Status& why) {
  if (pending.done) return;
  pending.done = true;
  loop_->Unwatch(pending.fd.get());
  pending.fd.reset();
  rejected_++;
  Log(LogLevel::kWarning, "%s: rejected connection from %s: %s", options_.what, pending.from, why.message());
  SweepLater();
}

void Acceptor::Expire() {
  uint64_t expirations;
  while (::read(timer_.get(), &expirations, sizeof(expirations)) > 0) {
  }
  const absl::Time now = absl::Now();
  for (auto& pending : pending_) {
    if (pending->done || pending->deadline > now) continue;
    Finish(*pending, absl::DeadlineExceededError(absl::StrFormat(
                         "no handshake within %s (a stranger, or a peer too slow to start?)",
                         absl::FormatDuration(options_.handshake_timeout))));
  }
  ArmTimer();
}

void Acceptor::ArmTimer() {
  absl::Time next = absl::InfiniteFuture();
  for (auto& pending : pending_) {
    if (!pending->done) next = std::min(next, pending->deadline);
  }
  itimerspec spec{};
  if (next != absl::InfiniteFuture()) {
    const absl::Duration left = std::max(next - absl::Now(), absl::Milliseconds(1));
    spec.it_value = absl::ToTimespec(left);
  }
  timerfd_settime(timer_.get(), 0, &spec, nullptr);  // all zero disarms it
}

void Acceptor::SweepLater() {
  if (sweep_posted_) return;
  sweep_posted_ = true;
  loop_->Post([this] {
    sweep_posted_ = false;
    pending_.remove_if([](const std::unique_ptr<Pending>& pending) { return pending->done; });
  });
}

}  // namespace silk::transport
