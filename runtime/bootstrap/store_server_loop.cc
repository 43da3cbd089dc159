#include "runtime/bootstrap/store_server_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/core/log.h"

namespace silk::bootstrap {
namespace {

// More connections than any job's ranks; beyond it new ones are refused.
constexpr size_t kMaxConnections = 16384;
constexpr size_t kReadChunkBytes = 256 << 10;
constexpr int kMaxAcceptsPerWakeup = 256;
// Bounds the time one busy client holds the loop before others get a turn.
constexpr size_t kMaxReadPerWakeup = 4 << 20;
// After accept() runs out of descriptors, wait instead of spinning on the listener.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);

std::string PeerName(const sockaddr_in& address) {
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &address.sin_addr, ip, sizeof(ip));
  return absl::StrFormat("%s:%d", ip, ntohs(address.sin_port));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreServerLoop>> StoreServerLoop::Create(ScopedFd listener, std::string name) {
  ScopedFd wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) {
    return absl::InternalError(absl::StrFormat("%s: eventfd failed: %s", name, std::strerror(errno)));
  }
  return std::unique_ptr<StoreServerLoop>(new StoreServerLoop(std::move(listener), std::move(wake), std::move(name)));
}

StoreServerLoop::StoreServerLoop(ScopedFd listener, ScopedFd wake, std::string name)
    : listener_(std::move(listener)), wake_(std::move(wake)), name_(std::move(name)) {}

void StoreServerLoop::RequestStop() {
  uint64_t one = 1;
  // Only fails when the counter would overflow, which still leaves it readable.
  [[maybe_unused]] ssize_t written = write(wake_.get(), &one, sizeof(one));
}

void StoreServerLoop::Run() {
  std::vector<pollfd> fds;
  while (true) {
    const bool accepting = absl::Now() >= accept_paused_until_;
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    fds.push_back({accepting ? listener_.get() : -1, POLLIN, 0});  // poll() skips negative fds
    for (const auto& c : connections_) {
      short events = POLLRDHUP;
      if (!Blocked(*c)) events |= POLLIN;
      if (!c->out.empty()) events |= POLLOUT;
      fds.push_back({c->fd.get(), events, 0});
    }
    absl::Time wake_at = NextDeadline();
    if (!accepting) wake_at = std::min(wake_at, accept_paused_until_);
    if (poll(fds.data(), fds.size(), PollTimeoutMs(wake_at)) < 0 && errno != EINTR) {
      Log(LogLevel::kWarning, "%s: poll failed: %s", name_, std::strerror(errno));
      absl::SleepFor(absl::Milliseconds(10));
      continue;
    }
    if (fds[0].revents != 0) {
      AnswerPendingGetsAtShutdown();
      return;
    }

    const size_t polled = connections_.size();
    for (size_t i = 0; i < polled; ++i) {
      if (fds[i + 2].revents != 0) HandleEvents(*connections_[i], fds[i + 2].revents);
    }
    if (fds[1].revents != 0) AcceptAll();
    ExpirePendingGets();
    // Replies sent or gets answered may unblock connections with buffered requests.
    bool progressed = true;
    while (progressed) {
      progressed = false;
      for (const auto& c : connections_) progressed |= ProcessFrames(*c);
    }
    for (const auto& c : connections_) {
      if (c->fd.valid() && c->peer_closed) Drop(*c, LogLevel::kDebug, "closed by the client");
    }
    std::erase_if(connections_, [](const auto& c) { return !c->fd.valid(); });
  }
}

void StoreServerLoop::AcceptAll() {
  // Bounded, so a flood of connections cannot starve the ones already open.
  for (int accepted = 0; accepted < kMaxAcceptsPerWakeup; ++accepted) {
    sockaddr_in address{};
    socklen_t length = sizeof(address);
    ScopedFd fd(accept4(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length,
                        SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      Log(LogLevel::kWarning, "%s: accept failed: %s; pausing accepts for %s", name_, std::strerror(errno),
          absl::FormatDuration(kAcceptPause));
      accept_paused_until_ = absl::Now() + kAcceptPause;
      return;
    }
    if (connections_.size() >= kMaxConnections) {
      Log(LogLevel::kWarning, "%s: refusing connection from %s: already %d connections", name_,
          PeerName(address), connections_.size());
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto connection = std::make_unique<Connection>();
    connection->fd = std::move(fd);
    connection->peer = PeerName(address);
    connections_.push_back(std::move(connection));
  }
}

void StoreServerLoop::HandleEvents(Connection& c, short revents) {
  if (revents & (POLLERR | POLLNVAL)) {
    Drop(c, LogLevel::kInfo, "socket error (client reset or crashed?)");
    return;
  }
  if (revents & POLLOUT) Flush(c);
  if (!c.fd.valid()) return;
  const bool hangup = revents & (POLLHUP | POLLRDHUP);
  if (!Blocked(c) && (hangup || (revents & POLLIN))) {
    ReadAvailable(c);
  } else if (hangup) {
    Drop(c, LogLevel::kInfo, "client hung up while waiting for a reply");
  }
}

void StoreServerLoop::ReadAvailable(Connection& c) {
  size_t total = 0;
  while (total < kMaxReadPerWakeup) {
    const size_t old_size = c.in.size();
    c.in.resize(old_size + kReadChunkBytes);
    ssize_t n = recv(c.fd.get(), c.in.data() + old_size, kReadChunkBytes, MSG_DONTWAIT);
    c.in.resize(old_size + std::max<ssize_t>(n, 0));
    if (n > 0) {
      total += static_cast<size_t>(n);
    } else if (n == 0) {
      c.peer_closed = true;
      return;
    } else if (errno != EINTR) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        Drop(c, LogLevel::kInfo, absl::StrFormat("recv failed: %s", std::strerror(errno)));
      }
      return;
    }
  }
}

void StoreServerLoop::Flush(Connection& c) {
  if (!c.fd.valid()) return;
  if (int error = c.out.SendSome(c.fd.get()); error != 0) {
    Drop(c, LogLevel::kInfo, absl::StrFormat("send failed: %s", std::strerror(error)));
  }
}

bool StoreServerLoop::ProcessFrames(Connection& c) {
  bool progressed = false;
  size_t offset = 0;
  while (c.fd.valid() && !Blocked(c)) {
    absl::string_view available(c.in);
    available.remove_prefix(offset);
    if (available.size() < wire::kHeaderBytes) break;
    absl::StatusOr<wire::Header> header = wire::DecodeHeader(available);
    if (!header.ok()) {
      Drop(c, LogLevel::kWarning, std::string(header.status().message()));
      return true;
    }
    if (header->body_bytes > wire::kMaxRequestBodyBytes) {
      Drop(c, LogLevel::kWarning, absl::StrFormat("request body of %d bytes exceeds the limit of %d bytes",
                                                  header->body_bytes, wire::kMaxRequestBodyBytes));
      return true;
    }
    const size_t frame_bytes = wire::kHeaderBytes + header->body_bytes;
    if (available.size() < frame_bytes) {
      c.in.reserve(offset + frame_bytes);
      break;
    }
    absl::StatusOr<wire::Request> request =
        wire::DecodeRequest(header->code, available.substr(wire::kHeaderBytes, header->body_bytes));
    progressed = true;
    if (!request.ok()) {
      Drop(c, LogLevel::kWarning, std::string(request.status().message()));
      return true;
    }
    offset += frame_bytes;
    Handle(c, *std::move(request));
  }
  if (c.fd.valid() && offset > 0) c.in.erase(0, offset);
  return progressed;
}

void StoreServerLoop::Handle(Connection& c, wire::Request request) {
  switch (request.opcode) {
    case wire::Opcode::kSet: {
      const std::string& key = request.keys[0];
      data_[key] = std::make_shared<const std::string>(std::move(request.value));
      Reply(c, wire::ReplyCode::kOk, wire::FrameWriter());
      WakeWaiters(key);
      return;
    }
    case wire::Opcode::kAdd:
      HandleAdd(c, request.keys[0], request.delta);
      return;
    case wire::Opcode::kCheck: {
      wire::FrameWriter body;
      body.U32(static_cast<uint32_t>(request.keys.size()));
      for (const std::string& key : request.keys) body.U8(data_.contains(key) ? 1 : 0);
      Reply(c, wire::ReplyCode::kOk, body);
      return;
    }
    case wire::Opcode::kGet:
      HandleGet(c, std::move(request));
      return;
  }
}

void StoreServerLoop::HandleGet(Connection& c, wire::Request request) {
  PendingGet get{std::move(request.keys), 0, absl::Now() + request.timeout};
  while (get.next_missing < get.keys.size() && data_.contains(get.keys[get.next_missing])) ++get.next_missing;
  if (get.next_missing == get.keys.size()) {
    ReplyValues(c, get.keys);
  } else if (request.timeout <= absl::ZeroDuration()) {
    ReplyKeysFound(c, wire::ReplyCode::kTimeout, get.keys);
  } else {
    c.pending = std::move(get);
  }
}

void StoreServerLoop::HandleAdd(Connection& c, const std::string& key, int64_t delta) {
  int64_t current = 0;
  auto it = data_.find(key);
  if (it != data_.end() && !absl::SimpleAtoi(*it->second, &current)) {
    ReplyError(c, absl::StrFormat("add to key %s: its value is not an integer", wire::QuoteKey(key)));
    return;
  }
  int64_t sum;
  if (__builtin_add_overflow(current, delta, &sum)) {
    ReplyError(c, absl::StrFormat("add of %d to key %s overflows its value %d", delta, wire::QuoteKey(key), current));
    return;
  }
  data_[key] = std::make_shared<const std::string>(absl::StrCat(sum));
  Reply(c, wire::ReplyCode::kOk, wire::FrameWriter().U64(static_cast<uint64_t>(sum)));
  WakeWaiters(key);
}

void StoreServerLoop::WakeWaiters(const std::string& key) {
  for (const auto& c : connections_) {
    if (!c->fd.valid() || !c->pending.has_value()) continue;
    PendingGet& get = *c->pending;
    if (get.keys[get.next_missing] != key) continue;
    while (get.next_missing < get.keys.size() && data_.contains(get.keys[get.next_missing])) ++get.next_missing;
    if (get.next_missing < get.keys.size()) continue;
    std::vector<std::string> keys = std::move(get.keys);
    c->pending.reset();
    ReplyValues(*c, keys);
  }
}

void StoreServerLoop::ReplyValues(Connection& c, const std::vector<std::string>& keys) {
  size_t body_bytes = 4;
  for (const std::string& key : keys) body_bytes += 4 + data_.at(key)->size();
  if (body_bytes > wire::kMaxReplyBodyBytes) {
    ReplyError(c, absl::StrFormat("get of %d keys would return %d bytes, over the limit of %d bytes", keys.size(),
                                  body_bytes, wire::kMaxReplyBodyBytes));
    return;
  }
  // Header and count, then each value's length and the value itself, shared.
  std::string piece = wire::EncodeHeader(static_cast<uint8_t>(wire::ReplyCode::kOk), body_bytes);
  wire::AppendU32(static_cast<uint32_t>(keys.size()), &piece);
  c.out.AppendCopy(piece);
  for (const std::string& key : keys) {
    const std::shared_ptr<const std::string>& value = data_.at(key);
    piece.clear();
    wire::AppendU32(static_cast<uint32_t>(value->size()), &piece);
    c.out.AppendCopy(piece);
    c.out.AppendShared(value);
  }
  Flush(c);
}

void StoreServerLoop::ReplyKeysFound(Connection& c, wire::ReplyCode code, const std::vector<std::string>& keys) {
  wire::FrameWriter body;
  body.U32(static_cast<uint32_t>(keys.size()));
  for (const std::string& key : keys) body.U8(data_.contains(key) ? 1 : 0);
  Reply(c, code, body);
}

void StoreServerLoop::ReplyError(Connection& c, const std::string& message) {
  Reply(c, wire::ReplyCode::kError, wire::FrameWriter().String(message));
}

void StoreServerLoop::Reply(Connection& c, wire::ReplyCode code, const wire::FrameWriter& body) {
  c.out.AppendCopy(body.Finish(static_cast<uint8_t>(code)));
  Flush(c);
}

void StoreServerLoop::Drop(Connection& c, LogLevel level, const std::string& why) {
  Log(level, "%s: closing connection from %s: %s", name_, c.peer, why);
  c.fd.reset();
  c.pending.reset();
  std::string().swap(c.in);
  c.out.Clear();
}

absl::Time StoreServerLoop::NextDeadline() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& c : connections_) {
    if (c->pending.has_value()) next = std::min(next, c->pending->deadline);
  }
  return next;
}

void StoreServerLoop::ExpirePendingGets() {
  const absl::Time now = absl::Now();
  for (const auto& c : connections_) {
    if (!c->fd.valid() || !c->pending.has_value() || c->pending->deadline > now) continue;
    std::vector<std::string> keys = std::move(c->pending->keys);
    c->pending.reset();
    ReplyKeysFound(*c, wire::ReplyCode::kTimeout, keys);
  }
}

void StoreServerLoop::AnswerPendingGetsAtShutdown() {
  for (const auto& c : connections_) {
    if (!c->fd.valid() || !c->pending.has_value()) continue;
    std::vector<std::string> keys = std::move(c->pending->keys);
    c->pending.reset();
    ReplyKeysFound(*c, wire::ReplyCode::kShutdown, keys);  // best effort: one non-blocking send
  }
}

}  // namespace silk::bootstrap
