#include "runtime/bootstrap/store_protocol.h"

#include <climits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace silk::bootstrap::wire {
namespace {

uint64_t LoadLittleEndian(absl::string_view bytes, size_t count) {
  uint64_t value = 0;
  for (size_t i = 0; i < count; ++i) value |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  return value;
}

void StoreLittleEndian(uint64_t value, size_t count, std::string* out) {
  for (size_t i = 0; i < count; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

absl::Status Malformed(Opcode opcode, const char* what) {
  return absl::InvalidArgumentError(
      absl::StrFormat("malformed request (opcode %d): %s", static_cast<int>(opcode), what));
}

// Reads "u32 n, n keys" into `keys`.
bool ReadKeyList(FrameReader& reader, std::vector<std::string>* keys) {
  uint32_t count;
  if (!reader.U32(&count) || count > kMaxKeysPerRequest) return false;
  keys->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    absl::string_view key;
    if (!reader.String(kMaxKeyBytes, &key)) return false;
    keys->emplace_back(key);
  }
  return true;
}

}  // namespace

absl::StatusOr<Header> DecodeHeader(absl::string_view bytes) {
  if (bytes.size() < kHeaderBytes) return absl::InvalidArgumentError("frame header is truncated");
  uint32_t magic = static_cast<uint32_t>(LoadLittleEndian(bytes, 4));
  if (magic != kMagic) {
    return absl::InvalidArgumentError(absl::StrFormat("bad frame magic 0x%08x (expected 0x%08x)", magic, kMagic));
  }
  if (bytes[5] != 0 || bytes[6] != 0 || bytes[7] != 0) {
    return absl::InvalidArgumentError("reserved frame header bytes are not zero");
  }
  Header header;
  header.code = static_cast<uint8_t>(bytes[4]);
  header.body_bytes = static_cast<uint32_t>(LoadLittleEndian(bytes.substr(8), 4));
  return header;
}

FrameWriter& FrameWriter::U8(uint8_t value) {
  body_.push_back(static_cast<char>(value));
  return *this;
}

FrameWriter& FrameWriter::U32(uint32_t value) {
  AppendU32(value, &body_);
  return *this;
}

FrameWriter& FrameWriter::U64(uint64_t value) {
  StoreLittleEndian(value, 8, &body_);
  return *this;
}

FrameWriter& FrameWriter::String(absl::string_view value) {
  U32(static_cast<uint32_t>(value.size()));
  body_.append(value.data(), value.size());
  return *this;
}

std::string EncodeHeader(uint8_t code, size_t body_bytes) {
  std::string header;
  header.reserve(kHeaderBytes);
  StoreLittleEndian(kMagic, 4, &header);
  header.push_back(static_cast<char>(code));
  header.append(3, '\0');
  StoreLittleEndian(body_bytes, 4, &header);
  return header;
}

void AppendU32(uint32_t value, std::string* out) { StoreLittleEndian(value, 4, out); }

std::string FrameWriter::Finish(uint8_t code) const {
  std::string frame = EncodeHeader(code, body_.size());
  frame += body_;
  return frame;
}

bool FrameReader::U8(uint8_t* value) {
  if (rest_.empty()) return false;
  *value = static_cast<uint8_t>(rest_[0]);
  rest_.remove_prefix(1);
  return true;
}

bool FrameReader::U32(uint32_t* value) {
  if (rest_.size() < 4) return false;
  *value = static_cast<uint32_t>(LoadLittleEndian(rest_, 4));
  rest_.remove_prefix(4);
  return true;
}

bool FrameReader::U64(uint64_t* value) {
  if (rest_.size() < 8) return false;
  *value = LoadLittleEndian(rest_, 8);
  rest_.remove_prefix(8);
  return true;
}

bool FrameReader::String(size_t max_bytes, absl::string_view* value) {
  if (rest_.size() < 4) return false;
  uint64_t length = LoadLittleEndian(rest_, 4);
  if (length > max_bytes || length > rest_.size() - 4) return false;
  *value = rest_.substr(4, length);
  rest_.remove_prefix(4 + length);
  return true;
}

std::string QuoteKey(absl::string_view key) {
  constexpr size_t kShown = 80;
  if (key.size() <= kShown) return absl::StrFormat("\"%s\"", absl::CEscape(key));
  return absl::StrFormat("\"%s...\" (%d bytes)", absl::CEscape(key.substr(0, kShown)), key.size());
}

absl::StatusOr<Request> DecodeRequest(uint8_t code, absl::string_view body) {
  if (code < static_cast<uint8_t>(Opcode::kSet) || code > static_cast<uint8_t>(Opcode::kCheck)) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown opcode %d", code));
  }
  Request request;
  request.opcode = static_cast<Opcode>(code);
  FrameReader reader(body);
  absl::string_view key;
  switch (request.opcode) {
    case Opcode::kSet: {
      absl::string_view value;
      if (!reader.String(kMaxKeyBytes, &key)) return Malformed(request.opcode, "key is truncated or over 4 KiB");
      if (!reader.String(kMaxValueBytes, &value)) {
        return Malformed(request.opcode, "value is truncated or over 64 MiB");
      }
      request.keys.emplace_back(key);
      request.value.assign(value.data(), value.size());
      break;
    }
    case Opcode::kAdd: {
      uint64_t delta;
      if (!reader.String(kMaxKeyBytes, &key)) return Malformed(request.opcode, "key is truncated or over 4 KiB");
      if (!reader.U64(&delta)) return Malformed(request.opcode, "missing delta");
      request.keys.emplace_back(key);
      request.delta = static_cast<int64_t>(delta);
      break;
    }
    case Opcode::kGet: {
      uint64_t timeout_ms;
      if (!reader.U64(&timeout_ms)) return Malformed(request.opcode, "missing timeout");
      if (!ReadKeyList(reader, &request.keys)) return Malformed(request.opcode, "bad key list");
      // Saturate: absurd timeouts mean "wait as long as possible".
      request.timeout = timeout_ms > uint64_t{INT64_MAX} ? absl::InfiniteDuration()
                                                         : absl::Milliseconds(static_cast<int64_t>(timeout_ms));
      break;
    }
    case Opcode::kCheck:
      if (!ReadKeyList(reader, &request.keys)) return Malformed(request.opcode, "bad key list");
      break;
  }
  if (!reader.AtEnd()) return Malformed(request.opcode, "trailing bytes after the last field");
  return request;
}

absl::StatusOr<std::vector<std::string>> DecodeValues(absl::string_view body, size_t expected) {
  FrameReader reader(body);
  uint32_t count;
  std::vector<std::string> values;
  if (reader.U32(&count) && count == expected) {
    values.reserve(count);
    absl::string_view value;
    while (values.size() < count && reader.String(kMaxReplyBodyBytes, &value)) values.emplace_back(value);
  }
  if (values.size() != expected || !reader.AtEnd()) {
    return absl::DataLossError("malformed reply from the store server");
  }
  return values;
}

absl::StatusOr<std::vector<bool>> DecodeKeysFound(absl::string_view body, size_t expected) {
  FrameReader reader(body);
  uint32_t count;
  std::vector<bool> exists;
  if (reader.U32(&count) && count == expected) {
    uint8_t flag;
    while (exists.size() < count && reader.U8(&flag)) exists.push_back(flag != 0);
  }
  if (exists.size() != expected || !reader.AtEnd()) {
    return absl::DataLossError("malformed reply from the store server");
  }
  return exists;
}

absl::StatusOr<int64_t> DecodeAddResult(absl::string_view body) {
  FrameReader reader(body);
  uint64_t sum;
  if (!reader.U64(&sum) || !reader.AtEnd()) return absl::DataLossError("malformed reply");
  return static_cast<int64_t>(sum);
}

absl::StatusOr<std::string> DecodeErrorMessage(absl::string_view body) {
  FrameReader reader(body);
  absl::string_view message;
  if (!reader.String(kMaxReplyBodyBytes, &message)) return absl::DataLossError("malformed error reply");
  return std::string(message);
}

}  // namespace silk::bootstrap::wire
