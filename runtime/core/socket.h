// IPv4 TCP socket helpers, written once for every layer that opens sockets
// (the bootstrap's store, the TCP lanes, shared memory's pair sockets). Every
// wait takes an absolute deadline; sockets are non-blocking and close-on-exec;
// nothing raises SIGPIPE. Errors name what failed; callers prefix what they were doing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/core/fd.h"

namespace silk {

// Applied to a socket before it binds or connects (buffer sizes must be set
// then for the window scale to cover them).
using ConfigureSocket = std::function<absl::Status(int fd)>;

// "host:port", e.g. "127.0.0.1:29500".
std::string HostPort(const std::string& host, uint16_t port);
// True for "localhost" and addresses in 127.0.0.0/8.
bool IsLoopbackAddress(const std::string& host);

// Listens on `bind_address` ("0.0.0.0": every interface; "localhost") at
// `port` (0: the kernel picks one; read it with LocalPort), or, with
// `port_tries` > 1, on the first free one of port .. port + port_tries - 1.
absl::StatusOr<ScopedFd> ListenTcp(const std::string& bind_address, uint16_t port, int backlog, int port_tries = 1,
                                   const ConfigureSocket& configure = nullptr);
// The local port of `fd` (0 when unknown).
uint16_t LocalPort(int fd);
// "1.2.3.4:5678" for the remote end, "pid 123" for a Unix socket's, or "?" when unknown.
std::string PeerAddress(int fd);

// Connects to host:port (resolved on every attempt), retrying refused or
// unreachable attempts with a growing back-off until `deadline`: the peer may
// not listen yet. TCP_NODELAY is set.
absl::StatusOr<ScopedFd> ConnectTcp(const std::string& host, uint16_t port, absl::Time deadline,
                                    const ConfigureSocket& configure = nullptr);

// Waits until `fd` is ready for `events` (POLLIN, POLLOUT): DeadlineExceeded at `deadline`.
absl::Status WaitReady(int fd, short events, absl::Time deadline);

// Exactly `bytes`, or an error: Unavailable when the peer closes or the socket
// fails, DeadlineExceeded at `deadline`; each says how far it got.
absl::Status ReadExact(int fd, void* data, size_t bytes, absl::Time deadline);
absl::Status WriteAll(int fd, const void* data, size_t bytes, absl::Time deadline);

// IPv4 address of `ifname`, or of the first non-loopback interface that is up
// when empty; "127.0.0.1" when there is none.
absl::StatusOr<std::string> LocalIpv4Address(const std::string& ifname);

}  // namespace silk
