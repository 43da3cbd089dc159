// Fuzzes the connection handshake's decoding of the peer's messages. The
// first byte picks the side, the rest is the stream the peer sends: messages
// with a 4-byte length prefix (DecodeMessageLength), as ReadMessageFrame
// reads them.
//   even first byte: this rank connects (rank 3 to rank 0, lane 1) and reads
//                    the acceptor's Challenge, then its Welcome;
//   odd first byte:  this rank accepts (rank 0 of 4, 2 lanes) and reads a Hello.
// The job (42), token ("secret") and nonces are fixed, so a seed built by
// make_seeds.cc carries valid MACs and the fuzzer starts from accepted
// handshakes. Beyond "no crash", an accepted Hello must name a rank and lane
// in range.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/stubs/logging.h"
#include "runtime/transport/handshake.h"
#include "tests/fuzz/handshake_fixture.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "handshake_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

// Takes the next length-prefixed message off `stream`; false when the stream
// ends first or the prefix is refused (the handshake stops there too).
bool NextMessage(absl::string_view* stream, absl::string_view* message) {
  if (stream->size() < 4) return false;
  absl::StatusOr<uint32_t> length = silk::transport::DecodeMessageLength(stream->data());
  stream->remove_prefix(4);
  if (!length.ok()) {
    Check(length.status().message().find("exceeds") != absl::string_view::npos, "a refused length says why");
    return false;
  }
  if (stream->size() < *length) return false;
  *message = stream->substr(0, *length);
  stream->remove_prefix(*length);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs each string field that is not UTF-8; a fuzzer sends many.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace silk::transport;  // NOLINT: a test of this namespace
  namespace fixture = silk::fuzz::handshake;
  if (size == 0) return 0;
  const bool accepting = data[0] & 1;
  absl::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::string_view message;
  if (!accepting) {
    const HandshakeParams params = fixture::ConnectorParams();
    if (!NextMessage(&stream, &message)) return 0;
    absl::StatusOr<std::string> server_nonce = CheckChallenge(message, params, fixture::kServerRank);
    if (!server_nonce.ok()) {
      Check(!server_nonce.status().message().empty(), "a refused Challenge says why");
      return 0;
    }
    if (!NextMessage(&stream, &message)) return 0;
    absl::Status welcome = CheckWelcome(message, params, fixture::kServerRank, fixture::kLane,
                                             /*resume=*/false, *server_nonce,
                                             fixture::ClientNonce());
    Check(welcome.ok() || !welcome.message().empty(), "a refused Welcome says why");
  } else {
    const HandshakeParams params = fixture::AcceptorParams();
    if (!NextMessage(&stream, &message)) return 0;
    absl::StatusOr<CheckedHello> hello = CheckHello(message, params, fixture::ServerNonce());
    if (!hello.ok()) {
      Check(!hello.status().message().empty(), "a malformed Hello says why");
      return 0;
    }
    if (hello->refusal.ok()) {
      Check(hello->from.rank >= 0 && hello->from.rank < params.world_size, "an accepted rank is in range");
      Check(hello->from.lane >= 0 && hello->from.lane < params.lanes, "an accepted lane is in range");
    } else {
      Check(!hello->refusal.message().empty(), "a refusal says why");
    }
  }
  return 0;
}
