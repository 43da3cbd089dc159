#include "runtime/transport/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
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
#include <thread>

#include "absl/strings/str_format.h"
#include "runtime/core/status_macros.h"

namespace silk::transport {
namespace {

absl::Status Errno(const std::string& what) {
  int err = errno;
  return absl::UnavailableError(absl::StrFormat("%s: %s", what, std::strerror(err)));
}

int MillisUntil(absl::Time deadline) {
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
}

// Waits for `events` on fd, at most until `deadline`.
absl::Status PollUntil(int fd, short events, absl::Time deadline, const char* what) {
  while (true) {
    int timeout_ms = MillisUntil(deadline);
    if (timeout_ms == 0) return absl::DeadlineExceededError(absl::StrFormat("timed out %s", what));
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(absl::StrFormat("poll while %s", what));
    if (n > 0) return absl::OkStatus();
  }
}

}  // namespace

absl::Status SetMaxPacingRate(int fd, uint64_t bytes_per_s) {
  // The kernel reads an unsigned long; all ones lifts the cap.
  unsigned long rate = bytes_per_s == 0 ? ~0ul : static_cast<unsigned long>(bytes_per_s);
  if (setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, sizeof(rate)) < 0) {
    return Errno("setsockopt(SO_MAX_PACING_RATE)");
  }
  return absl::OkStatus();
}

absl::Status ApplySocketOptions(int fd, const SocketOptions& options) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) return Errno("setsockopt(TCP_NODELAY)");
  if (options.buffer_bytes > 0) {
    int bytes = static_cast<int>(std::min<size_t>(options.buffer_bytes, 1u << 30));
    // The kernel caps these at net.core.{w,r}mem_max; that is not an error.
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }
  if (options.notsent_lowat_bytes > 0) {
    int bytes = static_cast<int>(std::min<size_t>(options.notsent_lowat_bytes, 1u << 30));
    if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof(bytes)) < 0) {
      return Errno("setsockopt(TCP_NOTSENT_LOWAT)");
    }
  }
  if (!options.congestion.empty()) {
    if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, options.congestion.data(),
                   static_cast<socklen_t>(options.congestion.size())) < 0) {
      return Errno(absl::StrFormat("setsockopt(TCP_CONGESTION, \"%s\") (see "
                                   "/proc/sys/net/ipv4/tcp_available_congestion_control)",
                                   options.congestion));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ScopedFd> ListenTcp(uint16_t port, const SocketOptions& options, int backlog) {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket");
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Options set on the listener are inherited by accepted sockets, before the
  // handshake, so the window scale is negotiated for the full buffer.
  SILK_RETURN_IF_ERROR(ApplySocketOptions(fd.get(), options));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(port);
  // A fixed base port is counted up from, so several ranks on one host each
  // find one (a firewall opens SILK_PORT .. SILK_PORT + 63).
  const int attempts = port == 0 ? 1 : kPortRange;
  int bound = -1;
  for (int i = 0; i < attempts && bound < 0 && port + i <= 65535; ++i) {
    addr.sin_port = htons(static_cast<uint16_t>(port + i));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) bound = port + i;
  }
  if (bound < 0) {
    return Errno(port == 0 ? std::string("bind to a kernel-chosen port")
                           : absl::StrFormat("bind to any port in %d..%d", port, port + attempts - 1));
  }
  if (::listen(fd.get(), backlog) < 0) return Errno("listen");
  SILK_RETURN_IF_ERROR(SetNonBlocking(fd.get(), true));
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) return 0;
  return ntohs(addr.sin_port);
}

std::string PeerAddress(int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &len) < 0) return "?";
  if (storage.ss_family == AF_UNIX) {  // a local process: its pid says more than its (abstract) name
    ucred credentials{};
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return "a local process";
    return absl::StrFormat("pid %d", credentials.pid);
  }
  if (storage.ss_family != AF_INET) return "?";
  const auto& addr = reinterpret_cast<const sockaddr_in&>(storage);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, text, sizeof(text));
  return absl::StrFormat("%s:%d", text, ntohs(addr.sin_port));
}

absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, uint16_t port, const SocketOptions& options,
                                    absl::Time deadline) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
    if (rc != 0 || result == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat("cannot resolve host \"%s\": %s", host, gai_strerror(rc)));
    }
    addr.sin_addr = reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr;
    freeaddrinfo(result);
  }
  absl::Duration backoff = absl::Milliseconds(10);
  std::string last_error = "no attempt";
  while (absl::Now() < deadline) {
    ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return Errno("socket");
    SILK_RETURN_IF_ERROR(ApplySocketOptions(fd.get(), options));
    SILK_RETURN_IF_ERROR(SetNonBlocking(fd.get(), true));
    int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    if (rc < 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
    } else {
      absl::Status ready = PollUntil(fd.get(), POLLOUT, deadline, "connecting");
      if (!ready.ok()) break;
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) return fd;
      last_error = std::strerror(err);
    }
    absl::SleepFor(std::min(backoff, deadline - absl::Now()));
    backoff = std::min(backoff * 2, absl::Milliseconds(500));
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("could not connect to %s:%d before the deadline (last error: %s)", host, port, last_error));
}

absl::Status ReadExact(int fd, void* data, size_t bytes, absl::Time deadline) {
  char* out = static_cast<char*>(data);
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = ::recv(fd, out + done, bytes - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return absl::UnavailableError(absl::StrFormat("connection closed after %d of %d bytes", done, bytes));
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("recv");
    SILK_RETURN_IF_ERROR(PollUntil(fd, POLLIN, deadline, "reading"));
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const void* data, size_t bytes, absl::Time deadline) {
  const char* in = static_cast<const char*>(data);
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = ::send(fd, in + done, bytes - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("send");
    SILK_RETURN_IF_ERROR(PollUntil(fd, POLLOUT, deadline, "writing"));
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
    bool loopback = (it->ifa_flags & IFF_LOOPBACK) != 0;
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

}  // namespace silk::transport
