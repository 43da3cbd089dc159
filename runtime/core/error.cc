#include "runtime/core/error.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace silk {
namespace {

constexpr absl::string_view kKindPayload = "type.silk/ErrorKind";

absl::StatusCode CodeOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return absl::StatusCode::kOk;
    case ErrorKind::kInvalidArgument: return absl::StatusCode::kInvalidArgument;
    case ErrorKind::kMismatch: return absl::StatusCode::kFailedPrecondition;
    case ErrorKind::kPeerLost: return absl::StatusCode::kUnavailable;
    case ErrorKind::kProtocol: return absl::StatusCode::kDataLoss;
    case ErrorKind::kTimeout: return absl::StatusCode::kDeadlineExceeded;
    case ErrorKind::kAborted: return absl::StatusCode::kAborted;
    case ErrorKind::kInternal: return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kInternal;
}

}  // namespace

absl::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "ok";
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kMismatch: return "mismatch";
    case ErrorKind::kPeerLost: return "peer lost";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kAborted: return "aborted";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

absl::Status WithKind(absl::Status status, ErrorKind kind) {
  if (status.ok()) return status;
  status.SetPayload(kKindPayload, absl::Cord(std::string(1, static_cast<char>('0' + static_cast<int>(kind)))));
  return status;
}

absl::Status MakeError(ErrorKind kind, absl::string_view message) {
  return WithKind(absl::Status(CodeOf(kind), message), kind);
}

ErrorKind KindOf(const absl::Status& status) {
  if (status.ok()) return ErrorKind::kNone;
  if (auto payload = status.GetPayload(kKindPayload); payload && payload->size() == 1) {
    const int value = payload->Flatten()[0] - '0';
    if (value > 0 && value <= static_cast<int>(ErrorKind::kInternal)) return static_cast<ErrorKind>(value);
  }
  // Codes with one meaning only; FailedPrecondition (and the rest) have several.
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return ErrorKind::kInvalidArgument;
    case absl::StatusCode::kDeadlineExceeded: return ErrorKind::kTimeout;
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled: return ErrorKind::kAborted;
    case absl::StatusCode::kUnavailable: return ErrorKind::kPeerLost;
    case absl::StatusCode::kDataLoss: return ErrorKind::kProtocol;
    default: return ErrorKind::kInternal;
  }
}

absl::Status Prefixed(const absl::Status& status, absl::string_view prefix) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(prefix, status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace silk
