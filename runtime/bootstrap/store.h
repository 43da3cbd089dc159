// A key-value store for rendezvous, like c10d::Store: set, blocking get with
// a timeout, and an atomic counter. TcpStore is Silk's own; a framework's
// store (PyTorch's) can be adapted to this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

  // Values of all `keys`, waiting at most `timeout` in all for the last to
  // appear. The default asks one key at a time; TcpStoreClient asks for all in
  // one round trip, which matters across a WAN. A failure while waiting may
  // say which keys existed (see KeysFoundBeforeFailure).
  virtual absl::StatusOr<std::vector<std::string>> MultiGet(const std::vector<std::string>& keys,
                                                            absl::Duration timeout);
  // Whether each of `keys` exists now, without waiting.
  virtual absl::StatusOr<std::vector<bool>> Check(const std::vector<std::string>& keys);
  // Short description for messages, e.g. "tcp-store 10.0.0.1:29500".
  virtual std::string Describe() const { return "store"; }
};

// Attaches to a MultiGet failure which of its keys existed when it failed, so
// a caller can name what was missing without asking the store again.
void AttachKeysFound(const std::vector<bool>& found, absl::Status* status);
// The flags AttachKeysFound put on `status`, if any, one per key asked for.
std::optional<std::vector<bool>> KeysFoundBeforeFailure(const absl::Status& status);

}  // namespace silk::bootstrap
