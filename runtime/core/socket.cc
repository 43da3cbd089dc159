#include "runtime/core/socket.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/core/status_macros.h"

namespace silk {
namespace {

absl::Status Errno(const std::string& what, int err = errno) {
  return absl::UnavailableError(absl::StrFormat("%s: %s", what, std::strerror(err)));
}

absl::StatusOr<sockaddr_in> ResolveIpv4(const std::string& host, uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  const std::string numeric = host == "localhost" ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, numeric.c_str(), &address.sin_addr) == 1) return address;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::UnavailableError(absl::StrFormat("cannot resolve host \"%s\" to an IPv4 address: %s", host,
                                                  gai_strerror(rc)));
  }
  address.sin_addr = reinterpret_cast<const sockaddr_in*>(result->ai_addr)->sin_addr;
  freeaddrinfo(result);
  return address;
}

// One attempt, bounded by `deadline`.
absl::StatusOr<ScopedFd> ConnectOnce(const std::string& host, uint16_t port, absl::Time deadline,
                                     const ConfigureSocket& configure) {
  SILK_ASSIGN_OR_RETURN(sockaddr_in address, ResolveIpv4(host, port));
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket");
  if (configure) {
    absl::Status configured = configure(fd.get());
    // Marked as no refusal: a retry cannot mend it.
    if (!configured.ok()) return absl::FailedPreconditionError(configured.message());
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS) return Errno("connect");
    absl::Status ready = WaitReady(fd.get(), POLLOUT, deadline);
    if (!ready.ok()) return absl::Status(ready.code(), absl::StrCat("connect: ", ready.message()));
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) return Errno("connect", error);
  }
  // Retrying a loopback connect to a port nobody listens on can make the kernel
  // pick that very port as the source: TCP's simultaneous open then connects
  // the socket to itself. That is a refusal.
  sockaddr_in local{};
  socklen_t local_length = sizeof(local);
  if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &local_length) == 0 &&
      local.sin_addr.s_addr == address.sin_addr.s_addr && local.sin_port == address.sin_port) {
    return absl::UnavailableError("connect: connected to itself (nobody listening yet)");
  }
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

absl::Status WaitReady(int fd, short events, absl::Time deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int ready = ::poll(&p, 1, PollTimeoutMs(deadline));
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) return Errno("poll");
    if (ready == 0 && absl::Now() >= deadline) return absl::DeadlineExceededError("deadline passed");
  }
}

std::string HostPort(const std::string& host, uint16_t port) { return absl::StrFormat("%s:%d", host, port); }

bool IsLoopbackAddress(const std::string& host) {
  if (host == "localhost") return true;
  in_addr address{};
  if (inet_pton(AF_INET, host.c_str(), &address) != 1) return false;
  return (ntohl(address.s_addr) >> 24) == 127;
}

absl::StatusOr<ScopedFd> ListenTcp(const std::string& bind_address, uint16_t port, int backlog, int port_tries,
                                   const ConfigureSocket& configure) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  const std::string numeric = bind_address == "localhost" ? "127.0.0.1" : bind_address;
  if (inet_pton(AF_INET, numeric.c_str(), &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrFormat("cannot listen on %s: \"%s\" is not an IPv4 address",
                                                      HostPort(bind_address, port), bind_address));
  }
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket");
  int one = 1;
  // Lets a restarted job reuse the port while old connections sit in TIME_WAIT.
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (configure) SILK_RETURN_IF_ERROR(configure(fd.get()));
  const int tries = port == 0 ? 1 : std::max(port_tries, 1);
  int bound = -1, error = 0;
  for (int i = 0; i < tries && bound < 0 && port + i <= 65535; ++i) {
    address.sin_port = htons(static_cast<uint16_t>(port + i));
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
      bound = port + i;
    } else {
      error = errno;
    }
  }
  if (bound < 0) {
    return Errno(tries == 1 ? absl::StrFormat("cannot bind %s", HostPort(bind_address, port))
                            : absl::StrFormat("cannot bind any port of %s..%d", HostPort(bind_address, port),
                                              port + tries - 1),
                 error);
  }
  if (::listen(fd.get(), backlog) != 0) return Errno(absl::StrFormat("cannot listen on %s", HostPort(bind_address, bound)));
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0) return 0;
  return ntohs(address.sin_port);
}

std::string PeerAddress(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) return "?";
  if (storage.ss_family == AF_UNIX) {  // a local process: its pid says more than its (abstract) name
    ucred credentials{};
    socklen_t size = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) < 0) return "a local process";
    return absl::StrFormat("pid %d", credentials.pid);
  }
  if (storage.ss_family != AF_INET) return "?";
  const auto& address = reinterpret_cast<const sockaddr_in&>(storage);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text));
  return HostPort(text, ntohs(address.sin_port));
}

absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, uint16_t port, absl::Time deadline,
                                    const ConfigureSocket& configure) {
  const absl::Time start = absl::Now();
  absl::Duration backoff = absl::Milliseconds(10);
  absl::Status last_error = absl::DeadlineExceededError("the deadline had already passed");
  int attempts = 0;
  while (absl::Now() < deadline) {
    ++attempts;
    absl::StatusOr<ScopedFd> fd = ConnectOnce(host, port, deadline, configure);
    if (fd.ok()) return fd;
    if (absl::IsFailedPrecondition(fd.status())) return fd.status();  // configuring failed
    last_error = fd.status();
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    absl::SleepFor(std::min(backoff, left));
    backoff = std::min(backoff * 2, absl::Milliseconds(500));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "could not connect to %s: gave up after %s and %d attempts; last error: %s", HostPort(host, port),
      absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))), attempts,
      last_error.message()));
}

absl::Status ReadExact(int fd, void* data, size_t bytes, absl::Time deadline) {
  char* out = static_cast<char*>(data);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::recv(fd, out + done, bytes - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return absl::UnavailableError(absl::StrFormat("the peer closed the connection after %d of %d bytes", done, bytes));
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("recv");
    absl::Status ready = WaitReady(fd, POLLIN, deadline);
    if (absl::IsDeadlineExceeded(ready)) {
      return absl::DeadlineExceededError(absl::StrFormat("timed out after reading %d of %d bytes", done, bytes));
    }
    SILK_RETURN_IF_ERROR(ready);
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const void* data, size_t bytes, absl::Time deadline) {
  const char* in = static_cast<const char*>(data);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::send(fd, in + done, bytes - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("send");
    absl::Status ready = WaitReady(fd, POLLOUT, deadline);
    if (absl::IsDeadlineExceeded(ready)) {
      return absl::DeadlineExceededError(absl::StrFormat("timed out after writing %d of %d bytes", done, bytes));
    }
    SILK_RETURN_IF_ERROR(ready);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LocalIpv4Address(const std::string& ifname) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) < 0) return Errno("getifaddrs");
  std::string found;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    if (!(it->ifa_flags & IFF_UP)) continue;
    const bool loopback = (it->ifa_flags & IFF_LOOPBACK) != 0;
    if (ifname.empty() ? loopback : ifname != it->ifa_name) continue;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, text, sizeof(text));
    found = text;
    break;
  }
  freeifaddrs(list);
  if (!found.empty()) return found;
  if (!ifname.empty()) {
    return absl::NotFoundError(absl::StrFormat("SILK_SOCKET_IFNAME=%s: no such IPv4 interface is up", ifname));
  }
  return std::string("127.0.0.1");
}

}  // namespace silk
