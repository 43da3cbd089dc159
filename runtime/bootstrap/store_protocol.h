// Wire format of Silk's TCP store: small, length-prefixed, little-endian.
//
// Every frame (request or reply) is a 12-byte header followed by a body:
//   u32 magic "SKV1" | u8 code | 3 zero bytes | u32 body length
// A request's code is its opcode, a reply's code its ReplyCode. In bodies a
// "string" is a u32 length and that many bytes, integers are u64.
//
//   request                                   kOk reply
//   kSet   key, value                         (empty)
//   kGet   timeout_ms, u32 n, n keys          u32 n, n values
//   kAdd   key, delta (two's complement)      new value
//   kCheck u32 n, n keys                      u32 n, n bytes (1: key exists)
// A kGet that times out replies kTimeout with u32 n and n bytes (1: key
// exists), so the client can name what was missing; a kGet still waiting when
// the server stops gets kShutdown with the same body. kError carries a string.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace silk::bootstrap::wire {

inline constexpr uint32_t kMagic = 0x3156'4B53;  // "SKV1" as little-endian bytes.
inline constexpr size_t kHeaderBytes = 12;
inline constexpr size_t kMaxKeyBytes = 4 << 10;
inline constexpr size_t kMaxValueBytes = 64 << 20;
inline constexpr size_t kMaxKeysPerRequest = 1 << 16;
// The largest request is a kSet with the largest key and value.
inline constexpr size_t kMaxRequestBodyBytes = kMaxValueBytes + kMaxKeyBytes + 64;
// A kGet of many keys may gather more than one value's worth.
inline constexpr size_t kMaxReplyBodyBytes = size_t{1} << 30;

enum class Opcode : uint8_t { kSet = 1, kGet = 2, kAdd = 3, kCheck = 4 };
enum class ReplyCode : uint8_t { kOk = 0, kTimeout = 1, kError = 2, kShutdown = 3 };

struct Header {
  uint8_t code = 0;
  uint32_t body_bytes = 0;
};

// Decodes the first kHeaderBytes of `bytes`; fails on a wrong magic or
// non-zero reserved bytes (garbage, or a client that speaks something else).
absl::StatusOr<Header> DecodeHeader(absl::string_view bytes);

// A frame header, for replies streamed piece by piece.
std::string EncodeHeader(uint8_t code, size_t body_bytes);
// Appends a little-endian u32 (a count or a string's length).
void AppendU32(uint32_t value, std::string* out);

// Builds one frame: append fields, then Finish() prepends the header.
class FrameWriter {
 public:
  FrameWriter& U8(uint8_t value);
  FrameWriter& U32(uint32_t value);
  FrameWriter& U64(uint64_t value);
  FrameWriter& String(absl::string_view value);
  std::string Finish(uint8_t code) const;

 private:
  std::string body_;
};

// Reads fields from a frame body; every method returns false (and reads
// nothing) when the body is too short or a length exceeds `max_bytes`.
class FrameReader {
 public:
  explicit FrameReader(absl::string_view body) : rest_(body) {}
  bool U8(uint8_t* value);
  bool U32(uint32_t* value);
  bool U64(uint64_t* value);
  bool String(size_t max_bytes, absl::string_view* value);
  bool AtEnd() const { return rest_.empty(); }

 private:
  absl::string_view rest_;
};

// A decoded request, as the server sees it.
struct Request {
  Opcode opcode = Opcode::kSet;
  std::vector<std::string> keys;  // one for kSet and kAdd
  std::string value;              // kSet
  int64_t delta = 0;              // kAdd
  absl::Duration timeout;         // kGet
};

// A key quoted and escaped for messages, shortened when long (keys may be 4 KiB).
std::string QuoteKey(absl::string_view key);

// Decodes a request body; InvalidArgument says which rule it broke (unknown
// opcode, a key or value over its limit, a truncated or trailing field).
absl::StatusOr<Request> DecodeRequest(uint8_t code, absl::string_view body);

// Decoders of reply bodies, as the client sees them. DataLoss says what is
// malformed (a count other than `expected`, a truncated or trailing field).
// kOk to a kGet of `expected` keys: their values, in order.
absl::StatusOr<std::vector<std::string>> DecodeValues(absl::string_view body, size_t expected);
// kOk to a kCheck, and kTimeout or kShutdown to a kGet: which keys exist.
absl::StatusOr<std::vector<bool>> DecodeKeysFound(absl::string_view body, size_t expected);
// kOk to a kAdd: the key's new value.
absl::StatusOr<int64_t> DecodeAddResult(absl::string_view body);
// kError: the server's message (it may be followed by more fields).
absl::StatusOr<std::string> DecodeErrorMessage(absl::string_view body);

}  // namespace silk::bootstrap::wire
