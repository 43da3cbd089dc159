// Small blocking-with-deadline socket helpers for the bootstrap's TCP store.
// (The transport has its own, tuned for bulk data; these only need to be
// correct and never hang.) Every function takes an absolute deadline and a
// `what` string naming the operation and peer, which prefixes its errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/fd.h"

namespace silk::bootstrap {

// "host:port", e.g. "127.0.0.1:29500".
std::string HostPort(const std::string& host, uint16_t port);

// True for "localhost" and addresses in 127.0.0.0/8.
bool IsLoopbackAddress(const std::string& host);

// A listening IPv4 TCP socket bound to `bind_address` ("0.0.0.0" for all
// interfaces) and `port` (0: the kernel picks one; read it with BoundPort).
absl::StatusOr<ScopedFd> ListenTcp(const std::string& bind_address, uint16_t port, int backlog);
absl::StatusOr<uint16_t> BoundPort(int fd);

// Connects to host:port (IPv4, resolved on every attempt), retrying refused or
// unreachable attempts with exponential backoff until `deadline`; the peer may
// not be listening yet. Returns a non-blocking socket with TCP_NODELAY set.
absl::StatusOr<ScopedFd> ConnectWithRetry(const std::string& host, uint16_t port, absl::Time deadline);

// Reads exactly `size` bytes from the non-blocking socket `fd`, or fails when
// the deadline passes (DeadlineExceeded) or the peer closes (Unavailable).
absl::Status ReadExactly(int fd, void* data, size_t size, absl::Time deadline, const std::string& what);
// Writes all `size` bytes, or fails like ReadExactly. Never raises SIGPIPE.
absl::Status WriteAll(int fd, const void* data, size_t size, absl::Time deadline, const std::string& what);

}  // namespace silk::bootstrap
