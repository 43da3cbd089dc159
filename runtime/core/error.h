// Silk's one error model: every error Silk raises carries an ErrorKind, set
// where the error is raised and kept through every layer (as an absl::Status
// payload), so the C API and the PyTorch backend report what happened instead
// of guessing it from a status code that several causes share.
#pragma once

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace silk {

enum class ErrorKind {
  kNone = 0,         // OK
  kInvalidArgument,  // bad input to a call; rejected before anything was sent
  kMismatch,         // ranks made different calls (kind, count, type, root, size, ...)
  kPeerLost,         // a peer died, left, or the connection to it broke
  kProtocol,         // a peer sent bytes that break the wire protocol (corrupt, hostile, other version)
  kTimeout,          // a wait ran past its deadline
  kAborted,          // the application aborted, or the communicator was shut down
  kInternal,         // anything else: a failed system call, a bug
};

// "mismatch", "peer lost", ...
absl::string_view ErrorKindName(ErrorKind kind);

// An error of `kind` with the status code that kind maps to.
absl::Status MakeError(ErrorKind kind, absl::string_view message);
inline absl::Status MismatchError(absl::string_view m) { return MakeError(ErrorKind::kMismatch, m); }
inline absl::Status PeerLostError(absl::string_view m) { return MakeError(ErrorKind::kPeerLost, m); }
inline absl::Status ProtocolError(absl::string_view m) { return MakeError(ErrorKind::kProtocol, m); }
inline absl::Status TimeoutError(absl::string_view m) { return MakeError(ErrorKind::kTimeout, m); }
inline absl::Status AbortedError(absl::string_view m) { return MakeError(ErrorKind::kAborted, m); }
inline absl::Status InvalidArgument(absl::string_view m) { return MakeError(ErrorKind::kInvalidArgument, m); }

// The kind attached where the error was raised. A status with none attached
// (raised by a library, or by code that does not know the cause) is read from
// the codes that have one meaning (InvalidArgument, DeadlineExceeded, Aborted,
// Unavailable, DataLoss); any other code, FailedPrecondition included, is
// kInternal: a mismatch is never guessed.
ErrorKind KindOf(const absl::Status& status);

// `status` with `kind` attached (replacing any kind it had).
absl::Status WithKind(absl::Status status, ErrorKind kind);

// The same error (code, kind and every payload) with `prefix` before its message.
absl::Status Prefixed(const absl::Status& status, absl::string_view prefix);

}  // namespace silk
