// The fixed binary header in front of every frame on a Silk lane.
//
// A message (peer, op_id, seq) is cut into pieces; each piece travels as one
// frame on whichever lane is free, so the receiver places it by `offset`
// without caring about arrival order. All integers are little-endian (Silk
// runs on x86-64 and AArch64 only).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "runtime/core/types.h"

namespace silk::transport {

inline constexpr uint32_t kFrameMagic = 0x4b4c4953;  // "SILK"
inline constexpr uint16_t kProtocolVersion = 1;
// Upper bound on one message; protects the receiver from a corrupt length.
inline constexpr uint64_t kMaxMessageBytes = uint64_t{1} << 40;
inline constexpr uint32_t kMaxControlPayload = 4096;

enum class FrameType : uint8_t {
  kData = 1,
  kAbort = 2,    // payload: the reason (UTF-8); `seq` carries the absl::StatusCode
  kGoodbye = 3,  // orderly shutdown: no more frames follow on this lane
  kHeartbeat = 4,  // no payload: "still here", sent on an idle lane across a monitored link
  // Lanes across a monitored link only (tcp/resend_buffer.h):
  kAck = 5,     // payload: 8 bytes, how many bytes of this lane's stream the sender has received
  kResume = 6,  // first frame on a replacement connection, outside the stream: `offset` = bytes received
};

struct FrameHeader {
  uint32_t magic = kFrameMagic;
  uint16_t version = kProtocolVersion;
  FrameType type = FrameType::kData;
  uint8_t reserved0 = 0;
  uint32_t seq = 0;  // chunk sequence: the message's index within its operation
  uint32_t reserved1 = 0;
  uint64_t op_id = 0;   // the operation's sequence number on its communicator
  uint64_t offset = 0;  // where this frame's payload starts in the message
  uint64_t length = 0;  // payload bytes after this header
  uint64_t total = 0;   // the message's whole size
  OpDescriptor descriptor;
};
static_assert(sizeof(FrameHeader) == 64, "FrameHeader is a wire format");

// Checks a received header before anything trusts it; the error says what is wrong.
absl::Status ValidateHeader(const FrameHeader& header);

}  // namespace silk::transport
