// Authenticated connection set-up between two ranks of one job.
//
//   acceptor -> Challenge {version, job_id, server_rank, server_nonce}
//   connector -> Hello    {version, job_id, client_rank, lane, client_nonce, client_mac}
//   acceptor -> Welcome   {accepted, reason, server_mac}
//
// Both MACs are HMAC-SHA256 under the job token over the whole transcript, so
// each side proves it holds the token without sending it, and a replayed Hello
// fails against a fresh nonce. Anything else (garbage, a wrong version, a wrong
// job, a slow client) is rejected with a reason and never reaches the transport.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace silk::transport {

struct HandshakeParams {
  uint64_t job_id = 0;
  std::string token;
  int rank = -1;
  int world_size = 0;
  int lanes = 1;
  uint32_t protocol_version = 0;  // 0 means kProtocolVersion; tests set others
};

// Connector side: proves itself to `server_rank` for `lane` and checks the
// acceptor's proof. The error says why the acceptor refused, when it said.
// `resume`: the connection replaces the lane's current one (after a cut).
absl::Status ClientHandshake(int fd, const HandshakeParams& params, int server_rank, int lane,
                             absl::Time deadline, bool resume = false);

struct AcceptedConnection {
  int rank = -1;
  int lane = -1;
  bool resume = false;  // replaces the lane's connection rather than making it
};

// Asked whether the connection may join now (e.g. its lane is not already
// connected); its error becomes the rejection reason.
using HandshakeClaim = std::function<absl::Status(const AcceptedConnection& from)>;

// The acceptor's side as a machine over bytes, apart from any socket, so that
// an event loop runs many handshakes without a thread each (acceptor.h).
class HandshakeResponder {
 public:
  explicit HandshakeResponder(const HandshakeParams& params);

  // The framed Challenge: send it as soon as the connection is accepted.
  const std::string& challenge() const { return challenge_; }
  // How many bytes to read next: never more, so nothing after the Hello
  // (on shared memory, the segment) is read here.
  size_t wanted() const;

  struct Outcome {
    absl::StatusOr<AcceptedConnection> result;  // who joined, or why not
    std::string reply;  // framed Welcome or refusal to send; empty: close without answer
  };
  // Takes at most wanted() bytes read from the connector. Returns the outcome
  // once the Hello is complete (then asks `claim`), nothing before.
  std::optional<Outcome> Take(absl::string_view bytes, const HandshakeClaim& claim);

 private:
  Outcome Answer(const HandshakeClaim& claim);

  const HandshakeParams params_;
  std::string server_nonce_;
  std::string challenge_;
  std::string hello_;   // the Hello's bytes so far
  uint32_t length_ = 0;  // the Hello's length, once its prefix is in
  bool have_length_ = false;
};

// The acceptor's side over one socket, blocking until `deadline`.
absl::StatusOr<AcceptedConnection> ServerHandshake(int fd, const HandshakeParams& params, absl::Time deadline,
                                                   const HandshakeClaim& claim);

// The checks each side makes on the peer's messages, apart from the socket so
// that tests and fuzzers (tests/fuzz/handshake_fuzz.cc) can feed them bytes.
// `bytes` is one message as ReadMessageFrame returns it; each error is the one
// the handshake returns.

// The length in a message's 4-byte little-endian prefix, or an error when it
// is over the handshake's limit (4096 bytes).
absl::StatusOr<uint32_t> DecodeMessageLength(const char prefix[4]);

// Connector: checks the acceptor's Challenge; returns the acceptor's nonce.
absl::StatusOr<std::string> CheckChallenge(absl::string_view bytes, const HandshakeParams& params, int server_rank);

// Acceptor: what a decoded Hello says, and whether it is refused.
struct CheckedHello {
  AcceptedConnection from;  // the rank and lane it claims
  std::string client_nonce;
  absl::Status refusal;  // not OK: why it is refused (the reason sent back)
};
// An error means the bytes are no Hello at all (the connection is dropped
// without an answer); a refusal is answered with its reason.
absl::StatusOr<CheckedHello> CheckHello(absl::string_view bytes, const HandshakeParams& params,
                                        absl::string_view server_nonce);

// Connector: checks the acceptor's Welcome against the transcript so far.
absl::Status CheckWelcome(absl::string_view bytes, const HandshakeParams& params, int server_rank, int lane,
                          bool resume, absl::string_view server_nonce, absl::string_view client_nonce);

// Helpers shared with tests and bootstrap.
std::string RandomBytes(size_t count);
std::string HmacSha256(const std::string& key, const std::string& message);
absl::Status WriteMessageFrame(int fd, const std::string& bytes, absl::Time deadline);
absl::StatusOr<std::string> ReadMessageFrame(int fd, absl::Time deadline);

}  // namespace silk::transport
