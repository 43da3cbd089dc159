// A key-value store for rendezvous, like c10d::Store: set, blocking get with
// a timeout, and an atomic counter. TcpStore is Silk's own; a framework's
// store (PyTorch's) can be adapted to this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace silk::bootstrap {

class Store {
 public:
  virtual ~Store() = default;
  virtual absl::Status Set(const std::string& key, const std::string& value) = 0;
  // Waits until `key` exists, at most `timeout`; DeadlineExceeded names the key.
  virtual absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) = 0;
  // Adds `delta` to the integer at `key` (0 when absent) and returns the new value.
  virtual absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) = 0;
};

}  // namespace silk::bootstrap
