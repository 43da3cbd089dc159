// The control frames every transport sends beside its data, encoded once:
// an abort carries the failing rank's reason (its status code, its error
// kind and its message) so every peer fails with the cause, not a bare end of
// connection. TCP sends them on its lanes; shared memory on each pair's socket.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "runtime/transport/frame.h"

namespace silk::transport {

// A whole abort frame (header and reason, cut to kMaxControlPayload bytes).
std::string EncodeAbort(const absl::Status& reason);
// The error an abort frame from `peer` stands for: its code and kind, and a
// message naming the peer. Codes and kinds out of range read as aborted.
absl::Status DecodeAbort(const FrameHeader& header, absl::string_view reason, int peer);

}  // namespace silk::transport
