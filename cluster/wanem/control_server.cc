#include "cluster/wanem/control_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/log.h"

namespace silk::cluster::wanem {

ControlServer::~ControlServer() {
  while (!clients_.empty()) Close(clients_.size() - 1);
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
  }
}

absl::Status ControlServer::Listen(const std::string& path, int epoll_fd, uint32_t tag) {
  sockaddr_un address{};
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("control socket path \"%s\" must have 1 to %d characters", path, sizeof(address.sun_path) - 1));
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::UnavailableError(absl::StrFormat("control socket: %s", std::strerror(errno)));
  unlink(path.c_str());  // a socket file left by an emulator that crashed
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      chmod(path.c_str(), 0600) != 0 || listen(listen_fd_, 16) != 0) {
    return absl::UnavailableError(absl::StrFormat("control socket %s: bind/listen: %s", path, std::strerror(errno)));
  }
  path_ = path;
  epoll_fd_ = epoll_fd;
  tag_ = tag;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = (uint64_t{tag} << 32) | static_cast<uint32_t>(listen_fd_);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &event) != 0) {
    return absl::UnavailableError(absl::StrFormat("control socket %s: epoll_ctl: %s", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

void ControlServer::Accept(int64_t now_ns) {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) Log(LogLevel::kWarning, "silk-wanem: accept on %s: %s", path_, std::strerror(errno));
      return;
    }
    if (clients_.size() >= kMaxClients) {
      const char busy[] = "error: too many control clients\n";
      (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = (uint64_t{tag_} << 32) | static_cast<uint32_t>(fd);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
      close(fd);
      continue;
    }
    clients_.push_back({fd, now_ns + kClientTimeoutNs, {}});
  }
}

void ControlServer::Close(size_t index) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, clients_[index].fd, nullptr);
  close(clients_[index].fd);
  clients_[index] = std::move(clients_.back());
  clients_.pop_back();
}

void ControlServer::OnEvent(int fd, int64_t now_ns) {
  if (fd == listen_fd_) return Accept(now_ns);
  size_t index = 0;
  while (index < clients_.size() && clients_[index].fd != fd) ++index;
  if (index == clients_.size()) return;
  Client& client = clients_[index];
  char buffer[1024];
  ssize_t got = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0) return Close(index);  // closed before finishing its line
  client.line.append(buffer, static_cast<size_t>(got));
  size_t newline = client.line.find('\n');
  std::string reply;
  if (newline != std::string::npos) {
    reply = handler_(absl::string_view(client.line).substr(0, newline));
  } else if (client.line.size() > kMaxLineBytes) {
    reply = absl::StrFormat("error: control command longer than %d bytes", kMaxLineBytes);
  } else {
    return;  // wait for the rest of the line
  }
  reply += '\n';
  // Replies are small; a client that cannot take one at once loses it.
  (void)!send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  Close(index);
}

int64_t ControlServer::ExpireClients(int64_t now_ns) {
  int64_t next = INT64_MAX;
  for (size_t i = 0; i < clients_.size();) {
    if (clients_[i].deadline_ns <= now_ns) {
      Close(i);
    } else {
      next = std::min(next, clients_[i].deadline_ns);
      ++i;
    }
  }
  return next;
}

}  // namespace silk::cluster::wanem
