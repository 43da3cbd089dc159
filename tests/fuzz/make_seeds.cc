// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/):
// a few valid inputs and edge cases each, built with the real encoders so
// they stay well-formed. The cluster spec seeds are text files kept by hand.
//
//   build/tests/fuzz/clang/make_seeds tests/fuzz/corpus
//
// Run it again after a wire format changes; fuzzers add their regressions
// (crash-* files) to the same folders by hand.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/bootstrap/store_protocol.h"
#include "runtime/core/error.h"
#include "runtime/transport/control.h"
#include "runtime/transport/frame.h"
#include "runtime/transport/handshake.h"
#include "runtime/transport/handshake.pb.h"
#include "tests/fuzz/handshake_fixture.h"

namespace {

namespace fs = std::filesystem;
using namespace silk::transport;  // NOLINT: a test of this namespace
namespace wire = silk::bootstrap::wire;
namespace fixture = silk::fuzz::handshake;

fs::path root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(root / target);
  std::ofstream(root / target / name, std::ios::binary) << bytes;
}

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "make_seeds: %s\n", what);
    std::exit(1);
  }
}

// --- frame_header: a lane's byte stream ---

std::string Frame(FrameHeader h, const std::string& payload = "") {
  std::string out(sizeof(h), '\0');
  std::memcpy(out.data(), &h, sizeof(h));
  return out + payload;
}

FrameHeader Data(uint64_t offset, uint64_t length, uint64_t total) {
  FrameHeader h;
  h.op_id = 7;
  h.seq = 1;
  h.offset = offset;
  h.length = length;
  h.total = total;
  h.descriptor.kind = silk::CollectiveKind::kAllreduce;
  h.descriptor.count = total / 4;
  return h;
}

void FrameSeeds() {
  Write("frame_header", "data", Frame(Data(8, 8, 16), std::string(8, 'x')));
  Write("frame_header", "data_two_frames",
        Frame(Data(0, 8, 16), std::string(8, 'a')) + Frame(Data(8, 8, 16), std::string(8, 'b')));
  Write("frame_header", "data_empty", Frame(Data(0, 0, 0)));
  FrameHeader abort;
  abort.type = FrameType::kAbort;
  abort.seq = 13;  // absl::StatusCode::kInternal
  abort.length = 4;
  Write("frame_header", "abort", Frame(abort, "boom"));
  Write("frame_header", "abort_encoded",
        silk::transport::EncodeAbort(silk::MakeError(silk::ErrorKind::kMismatch, "mismatched collective calls")));
  FrameHeader goodbye;
  goodbye.type = FrameType::kGoodbye;
  Write("frame_header", "goodbye", Frame(goodbye));
  FrameHeader bad = Data(0, 8, 16);
  bad.magic = 0x12345678;
  Write("frame_header", "bad_magic", Frame(bad));
  bad = Data(0, 8, 16);
  bad.version = kProtocolVersion + 1;
  Write("frame_header", "bad_version", Frame(bad));
  Write("frame_header", "offset_overflows", Frame(Data(~uint64_t{0}, 8, 16)));
  Write("frame_header", "total_too_large", Frame(Data(0, 8, kMaxMessageBytes + 1)));
  abort.length = kMaxControlPayload + 1;
  Write("frame_header", "abort_too_long", Frame(abort));
  bad = Data(0, 8, 16);
  bad.type = static_cast<FrameType>(99);
  Write("frame_header", "unknown_type", Frame(bad));
  Write("frame_header", "truncated_header", Frame(Data(0, 8, 16)).substr(0, 30));
}

// --- handshake: a side byte, then length-prefixed messages ---

std::string Prefixed(const std::string& message) {
  uint32_t length = static_cast<uint32_t>(message.size());
  std::string out(4, '\0');
  std::memcpy(out.data(), &length, 4);
  return out + message;
}

// The handshake's transcript (handshake.cc); make_seeds checks the result.
std::string Transcript(const char* label) {
  return absl::StrCat(label, "|", kProtocolVersion, "|", fixture::kJobId, "|", fixture::kServerRank, "|",
                      fixture::kClientRank, "|", fixture::kLane, "|", fixture::ServerNonce(), "|",
                      fixture::ClientNonce());
}

void HandshakeSeeds() {
  Challenge challenge;
  challenge.set_protocol_version(kProtocolVersion);
  challenge.set_job_id(fixture::kJobId);
  challenge.set_server_rank(fixture::kServerRank);
  challenge.set_server_nonce(fixture::ServerNonce());
  Welcome welcome;
  welcome.set_accepted(true);
  welcome.set_server_mac(HmacSha256(fixture::kToken, Transcript("silk-server")));
  Require(CheckWelcome(welcome.SerializeAsString(), fixture::ConnectorParams(), fixture::kServerRank,
                            fixture::kLane, /*resume=*/false, fixture::ServerNonce(), fixture::ClientNonce())
              .ok(),
          "the valid Welcome is refused: has the transcript changed?");
  const std::string connector(1, '\0');
  Write("handshake", "connector_accepted",
        connector + Prefixed(challenge.SerializeAsString()) + Prefixed(welcome.SerializeAsString()));
  Welcome refusal;
  refusal.set_accepted(false);
  refusal.set_reason("rank 3 lane 1 is already connected");
  Write("handshake", "connector_refused",
        connector + Prefixed(challenge.SerializeAsString()) + Prefixed(refusal.SerializeAsString()));
  Challenge other_job = challenge;
  other_job.set_job_id(7);
  Write("handshake", "connector_other_job", connector + Prefixed(other_job.SerializeAsString()));
  Write("handshake", "connector_too_long", connector + std::string("\xff\xff\x00\x00", 4));

  Hello hello;
  hello.set_protocol_version(kProtocolVersion);
  hello.set_job_id(fixture::kJobId);
  hello.set_client_rank(fixture::kClientRank);
  hello.set_lane(fixture::kLane);
  hello.set_client_nonce(fixture::ClientNonce());
  hello.set_client_mac(HmacSha256(fixture::kToken, Transcript("silk-client")));
  auto checked = CheckHello(hello.SerializeAsString(), fixture::AcceptorParams(), fixture::ServerNonce());
  Require(checked.ok() && checked->refusal.ok(), "the valid Hello is refused: has the transcript changed?");
  const std::string acceptor(1, '\1');
  Write("handshake", "acceptor_accepted", acceptor + Prefixed(hello.SerializeAsString()));
  Hello bad = hello;
  bad.set_lane(5);
  Write("handshake", "acceptor_lane_out_of_range", acceptor + Prefixed(bad.SerializeAsString()));
  bad = hello;
  bad.set_client_mac(std::string(32, '\0'));
  Write("handshake", "acceptor_wrong_mac", acceptor + Prefixed(bad.SerializeAsString()));
  Write("handshake", "acceptor_garbage", acceptor + Prefixed("\xff\xff\xff"));
}

// --- store_protocol: a selector byte, then frames ---

std::string Selector(int what, int keys) { return std::string(1, static_cast<char>(1 | what << 1 | keys << 3)); }

void StoreSeeds() {
  const std::string requests(1, '\0');
  auto op = [](wire::Opcode opcode) { return static_cast<uint8_t>(opcode); };
  std::string set = wire::FrameWriter().String("rank0/address").String("10.0.0.1:1234").Finish(op(wire::Opcode::kSet));
  std::string get =
      wire::FrameWriter().U64(5000).U32(2).String("a").String("b").Finish(op(wire::Opcode::kGet));
  std::string add = wire::FrameWriter().String("barrier").U64(1).Finish(op(wire::Opcode::kAdd));
  std::string check =
      wire::FrameWriter().U32(3).String("a").String("").String("c").Finish(op(wire::Opcode::kCheck));
  Write("store_protocol", "request_set", requests + set);
  Write("store_protocol", "request_get", requests + get);
  Write("store_protocol", "request_add", requests + add);
  Write("store_protocol", "request_check", requests + check);
  Write("store_protocol", "request_all", requests + set + get + add + check);
  Write("store_protocol", "request_get_forever",
        requests + wire::FrameWriter().U64(~uint64_t{0}).U32(1).String("k").Finish(op(wire::Opcode::kGet)));
  Write("store_protocol", "request_unknown_opcode", requests + wire::FrameWriter().Finish(9));
  Write("store_protocol", "request_key_overruns",
        requests + wire::FrameWriter().U32(1000).Finish(op(wire::Opcode::kSet)));
  Write("store_protocol", "request_trailing_bytes",
        requests + wire::FrameWriter().String("k").U64(1).U8(0).Finish(op(wire::Opcode::kAdd)));

  auto code = [](wire::ReplyCode reply) { return static_cast<uint8_t>(reply); };
  Write("store_protocol", "reply_values",
        Selector(0, 2) + wire::FrameWriter().U32(2).String("v1").String("").Finish(code(wire::ReplyCode::kOk)));
  Write("store_protocol", "reply_get_timeout",
        Selector(0, 2) + wire::FrameWriter().U32(2).U8(1).U8(0).Finish(code(wire::ReplyCode::kTimeout)));
  Write("store_protocol", "reply_check",
        Selector(1, 3) + wire::FrameWriter().U32(3).U8(1).U8(0).U8(1).Finish(code(wire::ReplyCode::kOk)));
  Write("store_protocol", "reply_add",
        Selector(2, 0) + wire::FrameWriter().U64(~uint64_t{0}).Finish(code(wire::ReplyCode::kOk)));
  Write("store_protocol", "reply_error",
        Selector(3, 0) + wire::FrameWriter().String("key too long").Finish(code(wire::ReplyCode::kError)));
  Write("store_protocol", "reply_count_mismatch",
        Selector(0, 1) + wire::FrameWriter().U32(2).String("v1").String("v2").Finish(code(wire::ReplyCode::kOk)));
  Write("store_protocol", "bad_magic", requests + "SKV2" + std::string(8, '\0'));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR (tests/fuzz/corpus)\n");
    return 2;
  }
  root = argv[1];
  FrameSeeds();
  HandshakeSeeds();
  StoreSeeds();
  std::printf("make_seeds: wrote the frame_header, handshake and store_protocol seeds under %s\n", argv[1]);
  return 0;
}
