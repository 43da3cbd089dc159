// Thin, deadline-bound helpers over POSIX TCP sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/fd.h"

namespace silk::transport {

struct SocketOptions {
  size_t buffer_bytes = 0;  // SO_SNDBUF/SO_RCVBUF; 0 leaves the kernel's autotuning
  std::string congestion;   // TCP_CONGESTION; empty keeps the default
  // TCP_NOTSENT_LOWAT: the socket takes more only while less than this is
  // still unsent, so a message waits in Silk's queue for whichever lane drains
  // first instead of behind a slow lane's kernel buffer; 0 keeps the default.
  size_t notsent_lowat_bytes = 0;
};

// Sets TCP_NODELAY, buffers, the unsent low-water mark and congestion control. An unavailable congestion
// algorithm is an error that names it.
absl::Status ApplySocketOptions(int fd, const SocketOptions& options);
// SO_MAX_PACING_RATE: the most bytes per second the kernel sends on `fd`
// (0: no cap beyond what its congestion control paces).
absl::Status SetMaxPacingRate(int fd, uint64_t bytes_per_s);

// Ports tried from a fixed base port: one per rank sharing a host.
inline constexpr int kPortRange = 64;

// Listens on all IPv4 interfaces at `port` (0: the kernel chooses), or the
// first free port of port .. port + kPortRange - 1.
absl::StatusOr<ScopedFd> ListenTcp(uint16_t port, const SocketOptions& options, int backlog = 256);
uint16_t LocalPort(int fd);
// "1.2.3.4:5678" for the remote end, "pid 123" for a Unix socket's, or "?" when unknown.
std::string PeerAddress(int fd);

// Connects before `deadline`, retrying refused connections (the peer may not listen yet).
absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, uint16_t port, const SocketOptions& options,
                                    absl::Time deadline);

// Blocking-style exact I/O on a non-blocking socket, bounded by `deadline`.
absl::Status ReadExact(int fd, void* data, size_t bytes, absl::Time deadline);
absl::Status WriteAll(int fd, const void* data, size_t bytes, absl::Time deadline);

// IPv4 address of `ifname`, or of the first non-loopback interface that is up when empty;
// "127.0.0.1" when there is none.
absl::StatusOr<std::string> LocalIpv4Address(const std::string& ifname);

}  // namespace silk::transport
