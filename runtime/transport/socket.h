// TCP tuning for the lanes, over the socket helpers of runtime/core/socket.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/fd.h"
#include "runtime/core/socket.h"

namespace silk::transport {

struct SocketOptions {
  size_t buffer_bytes = 0;  // SO_SNDBUF/SO_RCVBUF; 0 leaves the kernel's autotuning
  std::string congestion;   // TCP_CONGESTION; empty keeps the default
  // TCP_NOTSENT_LOWAT: the socket takes more only while less than this is
  // still unsent, so a message waits in Silk's queue for whichever lane drains
  // first instead of behind a slow lane's kernel buffer; 0 keeps the default.
  size_t notsent_lowat_bytes = 0;
  // TCP_RTO_MAX_MS (Linux 6.15+; ignored where the kernel lacks it): the
  // longest a retransmission waits, so traffic resumes within it when a cut
  // link heals, not after TCP's exponential back-off; 0 keeps the default.
  int rto_max_ms = 0;
  // TCP_USER_TIMEOUT: how long sent data may stay unacknowledged before the
  // kernel ends the connection (so a cut shorter than this is ridden out); 0 keeps the default.
  int user_timeout_ms = 0;
};

// Sets TCP_NODELAY, buffers, the unsent low-water mark and congestion control. An unavailable congestion
// algorithm is an error that names it.
absl::Status ApplySocketOptions(int fd, const SocketOptions& options);
// SO_SNDBUF and SO_RCVBUF, each `bytes`. The kernel caps a set buffer at
// net.core.{w,r}mem_max and stops tuning it; where that cap is below `bytes`
// and the kernel's own tuning may grow further (net.ipv4.tcp_{w,r}mem's
// maximum), that direction is left to the kernel instead, and it is logged
// once (a distribution's default cap of about 200 KiB would otherwise hold a
// WAN lane's window to a small fraction of the link).
void SetSocketBuffers(int fd, size_t bytes);

// What SetSocketBuffers sets for one direction: `wanted` if the cap
// (`set_max`) allows it, else 0 (left to the kernel's tuning) where that tuning
// reaches further (`tuned_max`), else the cap. A limit of 0 is unknown.
size_t SocketBufferToSet(size_t wanted, size_t set_max, size_t tuned_max);
// SO_MAX_PACING_RATE: the most bytes per second the kernel sends on `fd`
// (0: no cap beyond what its congestion control paces).
absl::Status SetMaxPacingRate(int fd, uint64_t bytes_per_s);

// Ports tried from a fixed base port: one per rank sharing a host.
inline constexpr int kPortRange = 64;

// Listens on every IPv4 interface at `port` (0: the kernel chooses), or the
// first free port of port .. port + kPortRange - 1, with `options` set on the
// listener: accepted sockets inherit them before their handshake.
absl::StatusOr<ScopedFd> ListenTcp(uint16_t port, const SocketOptions& options, int backlog = 256);

// Connects before `deadline` with `options` set first, retrying refused
// connections (the peer may not listen yet).
absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, uint16_t port, const SocketOptions& options,
                                    absl::Time deadline);

}  // namespace silk::transport
