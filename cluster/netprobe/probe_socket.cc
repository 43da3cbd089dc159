#include "cluster/netprobe/probe_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace silk::cluster::netprobe {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrFormat("%s: %s", what, std::strerror(errno)));
}

}  // namespace

std::string Endpoint::ToString() const { return absl::StrFormat("%s:%d", host, port); }

absl::StatusOr<Endpoint> ParseEndpoint(const std::string& text) {
  size_t colon = text.rfind(':');
  Endpoint endpoint;
  int port = 0;
  in_addr address{};
  if (colon == std::string::npos || !absl::SimpleAtoi(text.substr(colon + 1), &port) || port <= 0 || port > 65535 ||
      inet_pton(AF_INET, text.substr(0, colon).c_str(), &address) != 1) {
    return absl::InvalidArgumentError(absl::StrFormat("\"%s\" is not an IPv4 ADDRESS:PORT", text));
  }
  endpoint.host = text.substr(0, colon);
  endpoint.port = static_cast<uint16_t>(port);
  return endpoint;
}

int64_t NowNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

void SetIoTimeout(int fd, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

absl::StatusOr<int> ConnectTcp(const Endpoint& peer, absl::Duration timeout, absl::Duration io_timeout) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(peer.port);
  inet_pton(AF_INET, peer.host.c_str(), &address.sin_addr);
  int64_t deadline = NowNs() + absl::ToInt64Nanoseconds(timeout);
  std::string what = "connect to " + peer.ToString();
  while (true) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket for " + what);
    int result = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    if (result != 0 && errno == EINPROGRESS) {
      pollfd waiting{fd, POLLOUT, 0};
      int left_ms = static_cast<int>(std::max<int64_t>(0, (deadline - NowNs()) / 1'000'000));
      int ready = poll(&waiting, 1, left_ms);
      if (ready == 0) {
        close(fd);
        return absl::DeadlineExceededError(absl::StrFormat("%s: no answer within %s", what, absl::FormatDuration(timeout)));
      }
      int error = 0;
      socklen_t length = sizeof(error);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
      errno = error;
      result = error == 0 ? 0 : -1;
    }
    if (result == 0) {
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      SetIoTimeout(fd, io_timeout);
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return fd;
    }
    absl::Status failure = Errno(what);
    close(fd);
    if (NowNs() >= deadline) return failure;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the server may not be listening yet
  }
}

absl::Status SendAll(int fd, const void* data, size_t size, const std::string& what) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t sent = send(fd, bytes, size, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return absl::DeadlineExceededError(what + ": send timed out");
      return Errno(what);
    }
    bytes += sent;
    size -= static_cast<size_t>(sent);
  }
  return absl::OkStatus();
}

absl::Status RecvAll(int fd, void* data, size_t size, const std::string& what) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    ssize_t got = recv(fd, bytes, size, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return absl::DeadlineExceededError(what + ": receive timed out");
      return Errno(what);
    }
    if (got == 0) return absl::UnavailableError(what + ": peer closed the connection");
    bytes += got;
    size -= static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RecvLine(int fd, size_t max_bytes, const std::string& what) {
  std::string line;
  char c;
  while (line.size() < max_bytes) {
    absl::Status got = RecvAll(fd, &c, 1, what);
    if (!got.ok()) return got;
    if (c == '\n') return line;
    line.push_back(c);
  }
  return absl::OutOfRangeError(absl::StrFormat("%s: line longer than %d bytes", what, max_bytes));
}

}  // namespace silk::cluster::netprobe
