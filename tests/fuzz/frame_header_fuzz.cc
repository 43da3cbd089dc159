// Fuzzes the decoding of Silk's frames: the bytes are what a peer sends on a
// TCP lane (or, for aborts, on a shared-memory pair's socket), read as the
// receiver reads them (a 64-byte FrameHeader copied off the wire,
// ValidateHeader, then `length` payload bytes; an abort's through
// DecodeAbort), frame after frame. Beyond "no crash", it checks what the
// receiver relies on once a header is valid: a data frame's payload fits
// inside its message (so placing it at `offset` in a buffer of `total` bytes
// stays inside), a control payload is bounded, and an abort is an error of a
// known code and kind that encodes and decodes back to itself.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/core/error.h"
#include "runtime/transport/control.h"
#include "runtime/transport/frame.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "frame_header_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace silk::transport;
  const char* bytes = reinterpret_cast<const char*>(data);
  size_t pos = 0;
  while (size - pos >= sizeof(FrameHeader)) {
    FrameHeader h;
    std::memcpy(&h, bytes + pos, sizeof(h));
    pos += sizeof(h);
    absl::Status valid = ValidateHeader(h);
    if (!valid.ok()) {
      Check(!valid.message().empty(), "a rejected header has an error message");
      return 0;
    }
    // Every frame names its operation in errors (mismatch messages print it).
    std::string described = h.descriptor.ToString();
    Check(!described.empty(), "the descriptor prints");
    switch (h.type) {
      case FrameType::kData:
        Check(h.total <= kMaxMessageBytes, "total within kMaxMessageBytes");
        Check(h.length <= h.total, "length within total");
        Check(h.offset <= h.total && h.length <= h.total - h.offset, "offset + length within total, no overflow");
        break;
      case FrameType::kAbort:
      case FrameType::kGoodbye:
      case FrameType::kHeartbeat:
        Check(h.length <= kMaxControlPayload, "control payload bounded");
        break;
      case FrameType::kAck:
        Check(h.length == sizeof(uint64_t), "an ack carries one count");
        break;
      case FrameType::kResume:
        Check(h.length == 0, "a resume frame has no payload");
        break;
      default:
        Check(false, "only known frame types pass validation");
    }
    const size_t payload = static_cast<size_t>(std::min<uint64_t>(h.length, size - pos));
    if (h.type == FrameType::kAbort) {
      absl::string_view reason(bytes + pos, payload);
      absl::Status status = silk::transport::DecodeAbort(h, reason, /*peer=*/1);
      Check(!status.ok(), "an abort is an error");
      const int code = static_cast<int>(status.code());
      Check(code > 0 && code <= 16, "an abort's code is a known one");
      const silk::ErrorKind kind = silk::KindOf(status);
      Check(kind > silk::ErrorKind::kNone && kind <= silk::ErrorKind::kInternal, "an abort's kind is a known one");
      // What this rank would send on: the same code and kind again.
      std::string again = silk::transport::EncodeAbort(status);
      FrameHeader h2;
      Check(again.size() >= sizeof(h2), "an encoded abort has a header");
      std::memcpy(&h2, again.data(), sizeof(h2));
      Check(ValidateHeader(h2).ok() && h2.length == again.size() - sizeof(h2), "an encoded abort is valid");
      absl::Status twice =
          silk::transport::DecodeAbort(h2, absl::string_view(again).substr(sizeof(h2)), /*peer=*/1);
      Check(twice.code() == status.code() && silk::KindOf(twice) == kind, "an abort re-encodes to itself");
    }
    pos += payload;
  }
  return 0;
}
