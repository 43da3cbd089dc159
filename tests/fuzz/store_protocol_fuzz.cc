// Fuzzes the rendezvous store's wire decoding in both directions. The first
// byte picks the direction, the rest is a stream of frames (12-byte header,
// then the body), as the server loop or the client reads them:
//   even first byte: requests, as the server decodes them (DecodeHeader, the
//                    body limit, DecodeRequest);
//   odd first byte:  replies, as the client decodes them; bits 1-2 of the
//                    first byte pick which request they answer (get, check,
//                    add, or an error reply), bits 3-7 how many keys it had.
// Beyond "no crash": a decoded request respects every limit, and encoding it
// again gives the same body (nothing is silently dropped or invented).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/bootstrap/store_protocol.h"

namespace {

namespace wire = silk::bootstrap::wire;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "store_protocol_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

// Takes the next frame off `stream`; false at the end or on a refused header.
bool NextFrame(absl::string_view* stream, size_t max_body, wire::Header* header, absl::string_view* body) {
  if (stream->size() < wire::kHeaderBytes) return false;
  absl::StatusOr<wire::Header> decoded = wire::DecodeHeader(*stream);
  if (!decoded.ok()) {
    Check(!decoded.status().message().empty(), "a refused header says why");
    return false;
  }
  if (decoded->body_bytes > max_body || stream->size() - wire::kHeaderBytes < decoded->body_bytes) return false;
  *header = *decoded;
  *body = stream->substr(wire::kHeaderBytes, decoded->body_bytes);
  stream->remove_prefix(wire::kHeaderBytes + decoded->body_bytes);
  return true;
}

void CheckRequest(const wire::Request& request, absl::string_view body) {
  Check(request.keys.size() <= wire::kMaxKeysPerRequest, "key count within the limit");
  for (const std::string& key : request.keys) Check(key.size() <= wire::kMaxKeyBytes, "key within the limit");
  Check(request.value.size() <= wire::kMaxValueBytes, "value within the limit");
  wire::FrameWriter again;
  switch (request.opcode) {
    case wire::Opcode::kSet:
      Check(request.keys.size() == 1, "a set has one key");
      again.String(request.keys[0]).String(request.value);
      break;
    case wire::Opcode::kAdd:
      Check(request.keys.size() == 1, "an add has one key");
      again.String(request.keys[0]).U64(static_cast<uint64_t>(request.delta));
      break;
    case wire::Opcode::kGet: {
      Check(request.timeout >= absl::ZeroDuration(), "a get's timeout is not negative");
      // The timeout saturates, so only the key list is compared.
      absl::string_view keys_part = body.substr(8);
      wire::FrameWriter keys;
      keys.U32(static_cast<uint32_t>(request.keys.size()));
      for (const std::string& key : request.keys) keys.String(key);
      Check(keys.Finish(0).substr(wire::kHeaderBytes) == keys_part, "a get's keys encode back to its body");
      return;
    }
    case wire::Opcode::kCheck:
      again.U32(static_cast<uint32_t>(request.keys.size()));
      for (const std::string& key : request.keys) again.String(key);
      break;
    default:
      Check(false, "only known opcodes decode");
  }
  Check(again.Finish(0).substr(wire::kHeaderBytes) == body, "a request encodes back to its body");
}

void DecodeReply(uint8_t selector, const wire::Header& header, absl::string_view body) {
  const size_t keys = selector >> 3;
  switch ((selector >> 1) & 3) {
    case 0: {  // a get: its values, or which keys were found when it timed out
      if (header.code == static_cast<uint8_t>(wire::ReplyCode::kOk)) {
        auto values = wire::DecodeValues(body, keys);
        Check(!values.ok() || values->size() == keys, "one value per key");
      } else {
        auto found = wire::DecodeKeysFound(body, keys);
        Check(!found.ok() || found->size() == keys, "one flag per key");
      }
      break;
    }
    case 1: {  // a check
      auto found = wire::DecodeKeysFound(body, keys);
      Check(!found.ok() || found->size() == keys, "one flag per key");
      break;
    }
    case 2: {  // an add
      auto sum = wire::DecodeAddResult(body);
      Check(sum.ok() == (body.size() == 8), "an add's reply is exactly one u64");
      break;
    }
    case 3: {  // a refusal
      auto message = wire::DecodeErrorMessage(body);
      Check(!message.ok() || message->size() + 4 <= body.size(), "the message lies inside the body");
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  absl::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  wire::Header header;
  absl::string_view body;
  if ((selector & 1) == 0) {
    while (NextFrame(&stream, wire::kMaxRequestBodyBytes, &header, &body)) {
      absl::StatusOr<wire::Request> request = wire::DecodeRequest(header.code, body);
      if (!request.ok()) {
        Check(!request.status().message().empty(), "a refused request says why");
        return 0;  // the server drops the connection
      }
      CheckRequest(*request, body);
    }
  } else {
    while (NextFrame(&stream, wire::kMaxReplyBodyBytes, &header, &body)) DecodeReply(selector, header, body);
  }
  return 0;
}
