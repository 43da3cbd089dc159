// Attaching to a TUN device inside a network namespace. The file descriptor
// keeps working after the thread returns to its own namespace.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace silk::cluster::wanem {

// Opens the existing or new TUN device `ifname` (IP packets, no packet info
// header) in the network namespace at `netns_path` ("" for the current one).
// The descriptor is non-blocking. Errors name the namespace and device.
absl::StatusOr<int> OpenTun(const std::string& netns_path, const std::string& ifname);

}  // namespace silk::cluster::wanem
