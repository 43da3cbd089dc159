#include "runtime/bootstrap/socket_io.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/core/status_macros.h"

namespace silk::bootstrap {
namespace {

std::string ErrnoText(int err) { return absl::StrFormat("%s (errno %d)", std::strerror(err), err); }

absl::StatusOr<sockaddr_in> ResolveIpv4(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::UnavailableError(
        absl::StrFormat("cannot resolve host \"%s\" to an IPv4 address: %s", host, gai_strerror(rc)));
  }
  sockaddr_in address = *reinterpret_cast<const sockaddr_in*>(result->ai_addr);
  freeaddrinfo(result);
  address.sin_port = htons(port);
  return address;
}

bool SameEndpoint(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

// One connection attempt, bounded by `deadline`.
absl::StatusOr<ScopedFd> ConnectOnce(const std::string& host, uint16_t port, absl::Time deadline) {
  SILK_ASSIGN_OR_RETURN(sockaddr_in address, ResolveIpv4(host, port));
  ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::UnavailableError("socket: " + ErrnoText(errno));
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS) return absl::UnavailableError("connect: " + ErrnoText(errno));
    pollfd pfd{fd.get(), POLLOUT, 0};
    int ready;
    do {
      ready = poll(&pfd, 1, PollTimeoutMs(deadline));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return absl::DeadlineExceededError("connect: no answer before the deadline");
    int error = 0;
    socklen_t length = sizeof(error);
    if (ready < 0) error = errno;
    else if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) return absl::UnavailableError("connect: " + ErrnoText(error));
  }
  // Retrying a loopback connect to a port nobody listens on can make the kernel
  // pick that very port as our source port: TCP "simultaneous open" then
  // connects the socket to itself. Treat that as refused.
  sockaddr_in local{};
  socklen_t local_length = sizeof(local);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_length) == 0 &&
      SameEndpoint(local, address)) {
    return absl::UnavailableError("connect: connected to itself (nobody listening yet)");
  }
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status WaitReady(int fd, short events, absl::Time deadline) {
  while (true) {
    pollfd pfd{fd, events, 0};
    int ready = poll(&pfd, 1, PollTimeoutMs(deadline));
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) return absl::UnavailableError("poll: " + ErrnoText(errno));
    if (ready == 0 && absl::Now() >= deadline) return absl::DeadlineExceededError("deadline passed");
  }
}

}  // namespace

std::string HostPort(const std::string& host, uint16_t port) { return absl::StrFormat("%s:%d", host, port); }

bool IsLoopbackAddress(const std::string& host) {
  if (host == "localhost") return true;
  in_addr address{};
  if (inet_pton(AF_INET, host.c_str(), &address) != 1) return false;
  return (ntohl(address.s_addr) >> 24) == 127;
}

absl::StatusOr<ScopedFd> ListenTcp(const std::string& bind_address, uint16_t port, int backlog) {
  const std::string where = HostPort(bind_address, port);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  const std::string numeric = bind_address == "localhost" ? "127.0.0.1" : bind_address;
  if (inet_pton(AF_INET, numeric.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot listen on %s: \"%s\" is not an IPv4 address", where, bind_address));
  }
  ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::UnavailableError(absl::StrFormat("socket for %s: %s", where, ErrnoText(errno)));
  int one = 1;
  // Lets a restarted job reuse the port while old connections sit in TIME_WAIT.
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::UnavailableError(absl::StrFormat("cannot bind %s: %s", where, ErrnoText(errno)));
  }
  if (listen(fd.get(), backlog) != 0) {
    return absl::UnavailableError(absl::StrFormat("cannot listen on %s: %s", where, ErrnoText(errno)));
  }
  return fd;
}

absl::StatusOr<uint16_t> BoundPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return absl::InternalError("getsockname: " + ErrnoText(errno));
  }
  return ntohs(address.sin_port);
}

absl::StatusOr<ScopedFd> ConnectWithRetry(const std::string& host, uint16_t port, absl::Time deadline) {
  const absl::Time start = absl::Now();
  absl::Duration backoff = absl::Milliseconds(10);
  absl::Status last_error = absl::DeadlineExceededError("the deadline had already passed");
  int attempts = 0;
  while (absl::Now() < deadline) {
    ++attempts;
    absl::StatusOr<ScopedFd> fd = ConnectOnce(host, port, deadline);
    if (fd.ok()) return fd;
    last_error = fd.status();
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    absl::SleepFor(std::min(backoff, left));
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "could not connect to %s: gave up after %s and %d attempts; last error: %s", HostPort(host, port),
      absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))), attempts,
      last_error.message()));
}

absl::Status ReadExactly(int fd, void* data, size_t size, absl::Time deadline, const std::string& what) {
  auto* bytes = static_cast<char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = recv(fd, bytes + done, size - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrFormat("%s: peer closed the connection after %d of %d bytes", what, done, size));
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrFormat("%s: recv failed: %s", what, ErrnoText(errno)));
    }
    absl::Status ready = WaitReady(fd, POLLIN, deadline);
    if (absl::IsDeadlineExceeded(ready)) {
      return absl::DeadlineExceededError(
          absl::StrFormat("%s: timed out after reading %d of %d bytes", what, done, size));
    }
    if (!ready.ok()) return absl::UnavailableError(absl::StrFormat("%s: %s", what, ready.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const void* data, size_t size, absl::Time deadline, const std::string& what) {
  const auto* bytes = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = send(fd, bytes + done, size - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrFormat("%s: send failed: %s", what, ErrnoText(errno)));
    }
    absl::Status ready = WaitReady(fd, POLLOUT, deadline);
    if (absl::IsDeadlineExceeded(ready)) {
      return absl::DeadlineExceededError(
          absl::StrFormat("%s: timed out after writing %d of %d bytes", what, done, size));
    }
    if (!ready.ok()) return absl::UnavailableError(absl::StrFormat("%s: %s", what, ready.message()));
  }
  return absl::OkStatus();
}

}  // namespace silk::bootstrap
