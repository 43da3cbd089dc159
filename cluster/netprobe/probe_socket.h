// Small blocking-socket helpers for silk-netprobe. Every call is bounded by
// the socket's send/receive timeouts; errors name the operation and the peer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace silk::cluster::netprobe {

struct Endpoint {
  std::string host;  // IPv4 address
  uint16_t port = 0;
  std::string ToString() const;
};

// "198.18.2.1:5201" -> endpoint.
absl::StatusOr<Endpoint> ParseEndpoint(const std::string& text);

// Connects over TCP, retrying refused connections until `timeout` passes (the
// server may still be starting). The socket gets `io_timeout` for each send/recv.
absl::StatusOr<int> ConnectTcp(const Endpoint& peer, absl::Duration timeout, absl::Duration io_timeout);

// Applies SO_RCVTIMEO/SO_SNDTIMEO.
void SetIoTimeout(int fd, absl::Duration timeout);

absl::Status SendAll(int fd, const void* data, size_t size, const std::string& what);
absl::Status RecvAll(int fd, void* data, size_t size, const std::string& what);
// Reads up to a newline (not included); at most max_bytes.
absl::StatusOr<std::string> RecvLine(int fd, size_t max_bytes, const std::string& what);

int64_t NowNs();  // CLOCK_MONOTONIC, shared by every namespace on the machine

}  // namespace silk::cluster::netprobe
