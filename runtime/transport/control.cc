#include "runtime/transport/control.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"

namespace silk::transport {

std::string EncodeAbort(const absl::Status& reason) {
  absl::string_view text = reason.message().substr(0, kMaxControlPayload);
  FrameHeader header;
  header.type = FrameType::kAbort;
  header.seq = static_cast<uint32_t>(reason.code());
  header.reserved1 = static_cast<uint32_t>(KindOf(reason));
  header.length = text.size();
  std::string frame(sizeof(header), '\0');
  std::memcpy(frame.data(), &header, sizeof(header));
  frame.append(text.data(), text.size());
  return frame;
}

absl::Status DecodeAbort(const FrameHeader& header, absl::string_view reason, int peer) {
  auto code = static_cast<absl::StatusCode>(header.seq);
  auto kind = static_cast<ErrorKind>(header.reserved1);
  const bool known_code = header.seq > 0 && header.seq <= 16;
  const bool known_kind = header.reserved1 > 0 && header.reserved1 <= static_cast<uint32_t>(ErrorKind::kInternal);
  if (!known_code || !known_kind) {
    code = absl::StatusCode::kAborted;
    kind = ErrorKind::kAborted;
  }
  return WithKind(absl::Status(code, absl::StrFormat("rank %d aborted: %s", peer, reason)), kind);
}

}  // namespace silk::transport
