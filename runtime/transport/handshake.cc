#include "runtime/transport/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/core/status_macros.h"
#include "runtime/transport/frame.h"
#include "runtime/transport/handshake.pb.h"
#include "runtime/transport/socket.h"

namespace silk::transport {
namespace {

constexpr size_t kNonceBytes = 32;
constexpr uint32_t kMaxHandshakeMessage = 4096;

uint32_t Version(const HandshakeParams& p) { return p.protocol_version ? p.protocol_version : kProtocolVersion; }

// `resume` is in the transcript (when set), so a proof for a new lane cannot be replayed as a resumption.
std::string Transcript(const char* label, uint32_t version, uint64_t job_id, int server_rank, int client_rank,
                       int lane, bool resume, absl::string_view server_nonce, absl::string_view client_nonce) {
  return absl::StrCat(label, "|", version, "|", job_id, "|", server_rank, "|", client_rank, "|", lane,
                      resume ? "|resume|" : "|", server_nonce, "|", client_nonce);
}

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// A handshake message on the wire: a 4-byte little-endian length, then the bytes.
std::string Framed(const std::string& bytes) {
  const uint32_t length = static_cast<uint32_t>(bytes.size());
  std::string framed(4, '\0');
  std::memcpy(framed.data(), &length, 4);
  return framed + bytes;
}

template <typename Message>
absl::Status SendMessage(int fd, const Message& message, absl::Time deadline) {
  return WriteMessageFrame(fd, message.SerializeAsString(), deadline);
}

template <typename Message>
absl::Status ParseMessage(absl::string_view bytes, Message* message, const char* name) {
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrFormat("malformed %s message (%d bytes)", name, bytes.size()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string RandomBytes(size_t count) {
  std::string out(count, '\0');
  size_t done = 0;
  while (done < count) {
    ssize_t n = getrandom(out.data() + done, count - done, 0);
    if (n > 0) done += static_cast<size_t>(n);
  }
  return out;
}

std::string HmacSha256(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), mac, &mac_len);
  return std::string(reinterpret_cast<char*>(mac), mac_len);
}

absl::Status WriteMessageFrame(int fd, const std::string& bytes, absl::Time deadline) {
  const std::string framed = Framed(bytes);
  return WriteAll(fd, framed.data(), framed.size(), deadline);
}

absl::StatusOr<uint32_t> DecodeMessageLength(const char prefix[4]) {
  uint32_t length = 0;
  std::memcpy(&length, prefix, 4);
  if (length > kMaxHandshakeMessage) {
    return absl::InvalidArgumentError(
        absl::StrFormat("handshake message of %d bytes exceeds %d (not a Silk peer?)", length, kMaxHandshakeMessage));
  }
  return length;
}

absl::StatusOr<std::string> ReadMessageFrame(int fd, absl::Time deadline) {
  char prefix[4];
  SILK_RETURN_IF_ERROR(ReadExact(fd, prefix, 4, deadline));
  SILK_ASSIGN_OR_RETURN(uint32_t length, DecodeMessageLength(prefix));
  std::string bytes(length, '\0');
  SILK_RETURN_IF_ERROR(ReadExact(fd, bytes.data(), length, deadline));
  return bytes;
}

absl::StatusOr<std::string> CheckChallenge(absl::string_view bytes, const HandshakeParams& params, int server_rank) {
  Challenge challenge;
  SILK_RETURN_IF_ERROR(ParseMessage(bytes, &challenge, "Challenge"));
  if (challenge.protocol_version() != Version(params)) {
    return absl::FailedPreconditionError(absl::StrFormat("rank %d speaks protocol version %d, this rank %d",
                                                         server_rank, challenge.protocol_version(), Version(params)));
  }
  if (challenge.job_id() != params.job_id || challenge.server_rank() != server_rank) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "expected rank %d of job %016x but reached rank %d of job %016x (stale address?)", server_rank,
        params.job_id, challenge.server_rank(), challenge.job_id()));
  }
  return std::move(*challenge.mutable_server_nonce());
}

absl::StatusOr<CheckedHello> CheckHello(absl::string_view bytes, const HandshakeParams& params,
                                        absl::string_view server_nonce) {
  Hello hello;
  SILK_RETURN_IF_ERROR(ParseMessage(bytes, &hello, "Hello"));
  CheckedHello checked;
  checked.from = AcceptedConnection{hello.client_rank(), hello.lane(), hello.resume()};
  checked.client_nonce = hello.client_nonce();
  if (hello.protocol_version() != Version(params)) {
    checked.refusal = absl::FailedPreconditionError(
        absl::StrFormat("protocol version %d is not this rank's %d", hello.protocol_version(), Version(params)));
  } else if (hello.job_id() != params.job_id) {
    checked.refusal = absl::PermissionDeniedError(absl::StrFormat("job %016x is not this job", hello.job_id()));
  } else if (hello.client_rank() < 0 || hello.client_rank() >= params.world_size || hello.lane() < 0 ||
             hello.lane() >= params.lanes) {
    checked.refusal = absl::InvalidArgumentError(
        absl::StrFormat("rank %d lane %d out of range", hello.client_rank(), hello.lane()));
  } else {
    std::string expected = HmacSha256(params.token, Transcript("silk-client", Version(params), params.job_id,
                                                               params.rank, hello.client_rank(), hello.lane(),
                                                               hello.resume(), server_nonce, hello.client_nonce()));
    if (!ConstantTimeEqual(hello.client_mac(), expected)) {
      checked.refusal = absl::PermissionDeniedError(absl::StrFormat(
          "rank %d's proof of the job token is wrong (different SILK_JOB_TOKEN?)", hello.client_rank()));
    }
  }
  return checked;
}

absl::Status CheckWelcome(absl::string_view bytes, const HandshakeParams& params, int server_rank, int lane,
                          bool resume, absl::string_view server_nonce, absl::string_view client_nonce) {
  Welcome welcome;
  SILK_RETURN_IF_ERROR(ParseMessage(bytes, &welcome, "Welcome"));
  if (!welcome.accepted()) {
    return absl::PermissionDeniedError(absl::StrFormat("rank %d refused the connection: %s", server_rank, welcome.reason()));
  }
  std::string expected = HmacSha256(params.token, Transcript("silk-server", Version(params), params.job_id, server_rank,
                                                             params.rank, lane, resume, server_nonce, client_nonce));
  if (!ConstantTimeEqual(welcome.server_mac(), expected)) {
    return absl::PermissionDeniedError(
        absl::StrFormat("rank %d could not prove it holds the job token (impostor or different SILK_JOB_TOKEN)", server_rank));
  }
  return absl::OkStatus();
}

absl::Status ClientHandshake(int fd, const HandshakeParams& params, int server_rank, int lane, absl::Time deadline,
                             bool resume) {
  SILK_ASSIGN_OR_RETURN(std::string challenge_bytes, ReadMessageFrame(fd, deadline));
  SILK_ASSIGN_OR_RETURN(std::string server_nonce, CheckChallenge(challenge_bytes, params, server_rank));
  Hello hello;
  hello.set_protocol_version(Version(params));
  hello.set_job_id(params.job_id);
  hello.set_client_rank(params.rank);
  hello.set_lane(lane);
  hello.set_resume(resume);
  hello.set_client_nonce(RandomBytes(kNonceBytes));
  hello.set_client_mac(HmacSha256(params.token, Transcript("silk-client", Version(params), params.job_id, server_rank,
                                                           params.rank, lane, resume, server_nonce,
                                                           hello.client_nonce())));
  SILK_RETURN_IF_ERROR(SendMessage(fd, hello, deadline));

  SILK_ASSIGN_OR_RETURN(std::string welcome_bytes, ReadMessageFrame(fd, deadline));
  return CheckWelcome(welcome_bytes, params, server_rank, lane, resume, server_nonce, hello.client_nonce());
}

HandshakeResponder::HandshakeResponder(const HandshakeParams& params)
    : params_(params), server_nonce_(RandomBytes(kNonceBytes)) {
  Challenge challenge;
  challenge.set_protocol_version(Version(params_));
  challenge.set_job_id(params_.job_id);
  challenge.set_server_rank(params_.rank);
  challenge.set_server_nonce(server_nonce_);
  challenge_ = Framed(challenge.SerializeAsString());
}

size_t HandshakeResponder::wanted() const { return (have_length_ ? 4 + length_ : 4) - hello_.size(); }

std::optional<HandshakeResponder::Outcome> HandshakeResponder::Take(absl::string_view bytes,
                                                                    const HandshakeClaim& claim) {
  hello_.append(bytes.data(), std::min(bytes.size(), wanted()));
  if (!have_length_ && hello_.size() == 4) {
    absl::StatusOr<uint32_t> length = DecodeMessageLength(hello_.data());
    if (!length.ok()) return Outcome{length.status(), ""};
    length_ = *length;
    have_length_ = true;
  }
  if (!have_length_ || wanted() > 0) return std::nullopt;
  return Answer(claim);
}

HandshakeResponder::Outcome HandshakeResponder::Answer(const HandshakeClaim& claim) {
  absl::StatusOr<CheckedHello> hello = CheckHello(absl::string_view(hello_).substr(4), params_, server_nonce_);
  if (!hello.ok()) return Outcome{hello.status(), ""};  // not a Hello at all: no answer
  absl::Status refusal = hello->refusal;
  if (refusal.ok()) refusal = claim(hello->from);
  Welcome welcome;
  if (!refusal.ok()) {
    welcome.set_accepted(false);
    welcome.set_reason(std::string(refusal.message()));
    return Outcome{refusal, Framed(welcome.SerializeAsString())};
  }
  welcome.set_accepted(true);
  welcome.set_server_mac(HmacSha256(params_.token, Transcript("silk-server", Version(params_), params_.job_id,
                                                              params_.rank, hello->from.rank, hello->from.lane,
                                                              hello->from.resume, server_nonce_, hello->client_nonce)));
  return Outcome{hello->from, Framed(welcome.SerializeAsString())};
}

absl::StatusOr<AcceptedConnection> ServerHandshake(int fd, const HandshakeParams& params, absl::Time deadline,
                                                   const HandshakeClaim& claim) {
  HandshakeResponder responder(params);
  SILK_RETURN_IF_ERROR(WriteAll(fd, responder.challenge().data(), responder.challenge().size(), deadline));
  while (true) {
    std::string bytes(responder.wanted(), '\0');
    SILK_RETURN_IF_ERROR(ReadExact(fd, bytes.data(), bytes.size(), deadline));
    std::optional<HandshakeResponder::Outcome> outcome = responder.Take(bytes, claim);
    if (!outcome) continue;
    if (!outcome->reply.empty()) {
      absl::Status sent = WriteAll(fd, outcome->reply.data(), outcome->reply.size(), deadline);
      if (outcome->result.ok() && !sent.ok()) return sent;  // a refusal is best effort: the connection is dropped anyway
    }
    return outcome->result;
  }
}

}  // namespace silk::transport
