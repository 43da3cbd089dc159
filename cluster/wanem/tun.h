// Attaching to a TUN device inside a network namespace. The file descriptor
// keeps working after the thread returns to its own namespace.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace silk::cluster::wanem {

// Opens the existing or new TUN device `ifname` (IP packets, no packet info
// header) in the network namespace at `netns_path` ("" for the current one).
// With `vnet_header`, every packet read or written carries a virtio-net header
// first (see packet.h). The descriptor is non-blocking. Errors name the
// namespace and device.
absl::StatusOr<int> OpenTun(const std::string& netns_path, const std::string& ifname, bool vnet_header);

// Lets the kernel hand this TUN (opened with a vnet header) TCP
// super-packets with checksums left to the receiver (TSO), or stops it; takes
// effect at once on a live device.
absl::Status SetTunOffload(int fd, bool on);

}  // namespace silk::cluster::wanem
