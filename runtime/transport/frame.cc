#include "runtime/transport/frame.h"

#include "absl/strings/str_format.h"

namespace silk::transport {

absl::Status ValidateHeader(const FrameHeader& h) {
  if (h.magic != kFrameMagic) {
    return absl::DataLossError(absl::StrFormat("bad frame magic 0x%08x (stream corrupt or not Silk)", h.magic));
  }
  if (h.version != kProtocolVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("frame protocol version %d, expected %d", h.version, kProtocolVersion));
  }
  switch (h.type) {
    case FrameType::kData:
      if (h.total > kMaxMessageBytes || h.length > h.total || h.offset > h.total - h.length) {
        return absl::DataLossError(absl::StrFormat("bad data frame: offset %d + length %d exceeds total %d",
                                                   h.offset, h.length, h.total));
      }
      return absl::OkStatus();
    case FrameType::kAck:
    case FrameType::kResume:
      if (h.length != (h.type == FrameType::kAck ? sizeof(uint64_t) : 0)) {
        return absl::DataLossError(absl::StrFormat("%s frame with a payload of %d bytes",
                                                   h.type == FrameType::kAck ? "ack" : "resume", h.length));
      }
      return absl::OkStatus();
    case FrameType::kAbort:
    case FrameType::kGoodbye:
    case FrameType::kHeartbeat:
      if (h.length > kMaxControlPayload) {
        return absl::DataLossError(absl::StrFormat("control frame of %d bytes exceeds %d", h.length,
                                                   kMaxControlPayload));
      }
      return absl::OkStatus();
  }
  return absl::DataLossError(absl::StrFormat("unknown frame type %d", static_cast<int>(h.type)));
}

}  // namespace silk::transport
