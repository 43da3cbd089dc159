#include "runtime/transport/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>

#include "absl/strings/str_format.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"

namespace silk::transport {
namespace {

absl::Status Errno(const std::string& what) {
  int err = errno;
  return absl::UnavailableError(absl::StrFormat("%s: %s", what, std::strerror(err)));
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

size_t SocketBufferToSet(size_t wanted, size_t set_max, size_t tuned_max) {
  if (set_max == 0 || wanted <= set_max) return wanted;
  return tuned_max > set_max ? 0 : set_max;
}

namespace {

// The last number in a /proc/sys file (tcp_rmem's maximum, or the one value); 0 if unreadable.
size_t ReadLimit(const char* path) {
  std::ifstream file(path);
  size_t value = 0, last = 0;
  while (file >> value) last = value;
  return last;
}

// One direction's limits, read once: what a socket may set, and how far the kernel tunes it.
struct BufferLimits {
  const char* name;
  const char* set_sysctl;
  const char* tuned_sysctl;
  size_t set_max, tuned_max;
  std::once_flag logged;
};

BufferLimits& Limits(int option) {
  static BufferLimits send{"send", "net.core.wmem_max", "net.ipv4.tcp_wmem",
                           ReadLimit("/proc/sys/net/core/wmem_max"), ReadLimit("/proc/sys/net/ipv4/tcp_wmem"), {}};
  static BufferLimits receive{"receive", "net.core.rmem_max", "net.ipv4.tcp_rmem",
                              ReadLimit("/proc/sys/net/core/rmem_max"), ReadLimit("/proc/sys/net/ipv4/tcp_rmem"), {}};
  return option == SO_SNDBUF ? send : receive;
}

void SetSocketBuffer(int fd, int option, size_t bytes) {
  BufferLimits& limits = Limits(option);
  const size_t wanted = std::min<size_t>(bytes, 1u << 30);
  const size_t value = SocketBufferToSet(wanted, limits.set_max, limits.tuned_max);
  if (value != wanted) {
    std::call_once(limits.logged, [&] {
      Log(LogLevel::kInfo,
          "socket %s buffers of %d bytes wanted, but %s is %d: %s (raise %s for the WAN's window)", limits.name,
          wanted, limits.set_sysctl, limits.set_max,
          value == 0 ? absl::StrFormat("left to the kernel's tuning, up to %d (%s)", limits.tuned_max,
                                       limits.tuned_sysctl)
                     : std::string("capped there"),
          limits.set_sysctl);
    });
  }
  if (value == 0) return;
  const int size = static_cast<int>(value);
  setsockopt(fd, SOL_SOCKET, option, &size, sizeof(size));
}

}  // namespace

void SetSocketBuffers(int fd, size_t bytes) {
  SetSocketBuffer(fd, SO_SNDBUF, bytes);
  SetSocketBuffer(fd, SO_RCVBUF, bytes);
}

#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44  // Linux 6.15's; older headers lack it
#endif

absl::Status ApplySocketOptions(int fd, const SocketOptions& options) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) return Errno("setsockopt(TCP_NODELAY)");
  if (options.buffer_bytes > 0) SetSocketBuffers(fd, options.buffer_bytes);
  if (options.notsent_lowat_bytes > 0) {
    int bytes = static_cast<int>(std::min<size_t>(options.notsent_lowat_bytes, 1u << 30));
    if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof(bytes)) < 0) {
      return Errno("setsockopt(TCP_NOTSENT_LOWAT)");
    }
  }
  if (options.rto_max_ms > 0) {
    // An older kernel refuses it: recovery after a cut is then slower, never wrong.
    if (setsockopt(fd, IPPROTO_TCP, TCP_RTO_MAX_MS, &options.rto_max_ms, sizeof(options.rto_max_ms)) < 0) {
      static std::once_flag logged;
      std::call_once(logged, [] {
        Log(LogLevel::kInfo, "TCP_RTO_MAX_MS unavailable (%s): after a WAN cut, TCP's back-off delays recovery",
            std::strerror(errno));
      });
    }
  }
  if (options.user_timeout_ms > 0 &&
      setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &options.user_timeout_ms, sizeof(options.user_timeout_ms)) < 0) {
    return Errno("setsockopt(TCP_USER_TIMEOUT)");
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
  return silk::ListenTcp("0.0.0.0", port, backlog, kPortRange,
                         [&](int fd) { return ApplySocketOptions(fd, options); });
}

absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, uint16_t port, const SocketOptions& options,
                                    absl::Time deadline) {
  return silk::ConnectTcp(host, port, deadline, [&](int fd) { return ApplySocketOptions(fd, options); });
}

}  // namespace silk::transport
