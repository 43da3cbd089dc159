#include "runtime/bootstrap/tcp_store.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/bootstrap/store_protocol.h"
#include "runtime/core/error.h"
#include "runtime/core/status_macros.h"

namespace silk::bootstrap {
namespace {

// The server answers a get at its timeout; this covers the trip back and a
// large reply, so the client's own deadline only fires when the server is stuck.
constexpr absl::Duration kReplyGrace = absl::Seconds(10);
// A timeout message names at most this many missing keys.
constexpr size_t kMissingKeysShown = 8;

std::string KeysOperation(const char* verb, const std::vector<std::string>& keys) {
  if (keys.size() == 1) return absl::StrFormat("%s of key %s", verb, wire::QuoteKey(keys[0]));
  return absl::StrFormat("%s of %d keys", verb, keys.size());
}

absl::Status ValidateKeys(const std::string& where, const std::vector<std::string>& keys) {
  if (keys.size() > wire::kMaxKeysPerRequest) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %d keys in one request, over the limit of %d", where,
                                                      keys.size(), wire::kMaxKeysPerRequest));
  }
  for (const std::string& key : keys) {
    if (key.size() > wire::kMaxKeyBytes) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: key %s is over the limit of %d bytes", where,
                                                        wire::QuoteKey(key), wire::kMaxKeyBytes));
    }
  }
  return absl::OkStatus();
}

// Reads "u32 n, n bytes" (which keys exist) from a reply body.
absl::StatusOr<std::vector<bool>> DecodeExists(const std::string& body, size_t expected, const std::string& where) {
  absl::StatusOr<std::vector<bool>> exists = wire::DecodeKeysFound(body, expected);
  if (!exists.ok()) return absl::DataLossError(absl::StrFormat("%s: %s", where, exists.status().message()));
  return exists;
}

// "\"a\", \"b\" and 3 more": the keys not found, the first few by name.
std::string MissingKeys(const std::vector<std::string>& keys, const std::vector<bool>& found) {
  std::vector<std::string> shown;
  size_t count = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (found[i]) continue;
    if (++count <= kMissingKeysShown) shown.push_back(wire::QuoteKey(keys[i]));
  }
  std::string text = absl::StrJoin(shown, ", ");
  if (count > shown.size()) absl::StrAppend(&text, " and ", count - shown.size(), " more");
  return text;
}

uint64_t TimeoutMillis(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return UINT64_MAX;
  if (timeout <= absl::ZeroDuration()) return 0;
  return static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpStoreClient>> TcpStoreClient::Connect(const std::string& host, uint16_t port,
                                                                        absl::Duration timeout) {
  absl::StatusOr<ScopedFd> fd = ConnectTcp(host, port, absl::Now() + timeout);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(), absl::StrCat("tcp-store client: ", fd.status().message()));
  }
  return std::unique_ptr<TcpStoreClient>(new TcpStoreClient(host, port, timeout, *std::move(fd)));
}

TcpStoreClient::TcpStoreClient(std::string host, uint16_t port, absl::Duration io_timeout, ScopedFd fd)
    : host_(std::move(host)), port_(port), io_timeout_(io_timeout), fd_(std::move(fd)) {}

std::string TcpStoreClient::Describe() const { return "tcp-store " + HostPort(host_, port_); }

absl::Status TcpStoreClient::Set(const std::string& key, const std::string& value) {
  const std::string operation = KeysOperation("set", {key});
  SILK_RETURN_IF_ERROR(ValidateKeys(Describe() + ": " + operation, {key}));
  if (value.size() > wire::kMaxValueBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s: value of %d bytes is over the limit of %d bytes",
                                                      Describe(), operation, value.size(), wire::kMaxValueBytes));
  }
  std::string request = wire::FrameWriter().String(key).String(value).Finish(uint8_t(wire::Opcode::kSet));
  SILK_ASSIGN_OR_RETURN(Reply reply, RoundTrip(request, absl::Now() + io_timeout_, operation));
  if (reply.code != uint8_t(wire::ReplyCode::kOk)) return UnexpectedReply(reply, operation);
  return absl::OkStatus();
}

absl::StatusOr<std::string> TcpStoreClient::Get(const std::string& key, absl::Duration timeout) {
  SILK_ASSIGN_OR_RETURN(std::vector<std::string> values, MultiGet({key}, timeout));
  return std::move(values[0]);
}

absl::StatusOr<int64_t> TcpStoreClient::Add(const std::string& key, int64_t delta) {
  const std::string operation = absl::StrFormat("add of %d to key %s", delta, wire::QuoteKey(key));
  SILK_RETURN_IF_ERROR(ValidateKeys(Describe() + ": " + operation, {key}));
  std::string request =
      wire::FrameWriter().String(key).U64(static_cast<uint64_t>(delta)).Finish(uint8_t(wire::Opcode::kAdd));
  SILK_ASSIGN_OR_RETURN(Reply reply, RoundTrip(request, absl::Now() + io_timeout_, operation));
  if (reply.code != uint8_t(wire::ReplyCode::kOk)) return UnexpectedReply(reply, operation);
  absl::StatusOr<int64_t> sum = wire::DecodeAddResult(reply.body);
  if (!sum.ok()) return absl::DataLossError(absl::StrFormat("%s: %s: %s", Describe(), operation, sum.status().message()));
  return *sum;
}

absl::StatusOr<std::vector<std::string>> TcpStoreClient::MultiGet(const std::vector<std::string>& keys,
                                                                  absl::Duration timeout) {
  const std::string operation = KeysOperation("get", keys);
  const std::string where = Describe() + ": " + operation;
  SILK_RETURN_IF_ERROR(ValidateKeys(where, keys));
  if (keys.empty()) return std::vector<std::string>();
  wire::FrameWriter writer;
  writer.U64(TimeoutMillis(timeout)).U32(static_cast<uint32_t>(keys.size()));
  for (const std::string& key : keys) writer.String(key);
  const absl::Time deadline =
      absl::Now() + std::max(timeout, absl::ZeroDuration()) + std::max(kReplyGrace, io_timeout_);
  SILK_ASSIGN_OR_RETURN(Reply reply, RoundTrip(writer.Finish(uint8_t(wire::Opcode::kGet)), deadline, operation));

  const bool timed_out = reply.code == uint8_t(wire::ReplyCode::kTimeout);
  if (timed_out || reply.code == uint8_t(wire::ReplyCode::kShutdown)) {
    SILK_ASSIGN_OR_RETURN(std::vector<bool> found, DecodeExists(reply.body, keys.size(), where));
    const std::string missing = keys.size() > 1 ? "; missing " + MissingKeys(keys, found) : "";
    absl::Status status =
        timed_out ? absl::DeadlineExceededError(
                        absl::StrFormat("%s timed out after %s%s", where, absl::FormatDuration(timeout), missing))
                  : absl::UnavailableError(
                        absl::StrFormat("%s: the store server shut down while waiting%s", where, missing));
    AttachKeysFound(found, &status);
    if (!timed_out) MarkBroken(status);  // the server closes the connection next
    return status;
  }
  if (reply.code != uint8_t(wire::ReplyCode::kOk)) return UnexpectedReply(reply, operation);

  absl::StatusOr<std::vector<std::string>> values = wire::DecodeValues(reply.body, keys.size());
  if (!values.ok()) return absl::DataLossError(absl::StrFormat("%s: %s", where, values.status().message()));
  return values;
}

absl::StatusOr<std::vector<bool>> TcpStoreClient::Check(const std::vector<std::string>& keys) {
  const std::string operation = KeysOperation("check", keys);
  const std::string where = Describe() + ": " + operation;
  SILK_RETURN_IF_ERROR(ValidateKeys(where, keys));
  wire::FrameWriter writer;
  writer.U32(static_cast<uint32_t>(keys.size()));
  for (const std::string& key : keys) writer.String(key);
  SILK_ASSIGN_OR_RETURN(Reply reply,
                        RoundTrip(writer.Finish(uint8_t(wire::Opcode::kCheck)), absl::Now() + io_timeout_, operation));
  if (reply.code != uint8_t(wire::ReplyCode::kOk)) return UnexpectedReply(reply, operation);
  return DecodeExists(reply.body, keys.size(), where);
}

absl::StatusOr<TcpStoreClient::Reply> TcpStoreClient::RoundTrip(const std::string& request, absl::Time deadline,
                                                                const std::string& operation) {
  const std::string where = Describe() + ": " + operation;
  if (request.size() > wire::kHeaderBytes + wire::kMaxRequestBodyBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: request of %d bytes is over the limit of %d bytes", where,
                                                      request.size(), wire::kHeaderBytes + wire::kMaxRequestBodyBytes));
  }
  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: connection unusable after an earlier error: %s", where, broken_.message()));
  }
  absl::Status status = Prefixed(WriteAll(fd_.get(), request.data(), request.size(), deadline), where + ": sending request: ");
  Reply reply;
  if (status.ok()) {
    char header_bytes[wire::kHeaderBytes];
    status = Prefixed(ReadExact(fd_.get(), header_bytes, sizeof(header_bytes), deadline), where + ": reading reply header: ");
    absl::StatusOr<wire::Header> header;
    if (status.ok()) {
      header = wire::DecodeHeader(absl::string_view(header_bytes, sizeof(header_bytes)));
      if (!header.ok()) {
        status = absl::DataLossError(absl::StrFormat("%s: bad reply header: %s", where, header.status().message()));
      } else if (header->body_bytes > wire::kMaxReplyBodyBytes) {
        status = absl::DataLossError(absl::StrFormat("%s: reply of %d bytes is over the limit of %d bytes", where,
                                                     header->body_bytes, wire::kMaxReplyBodyBytes));
      }
    }
    if (status.ok()) {
      reply.code = header->code;
      reply.body.resize(header->body_bytes);
      status = Prefixed(ReadExact(fd_.get(), reply.body.data(), reply.body.size(), deadline), where + ": reading reply body: ");
    }
  }
  if (!status.ok()) {
    // The stream may hold half a frame now; nothing later on it can be trusted.
    broken_ = status;
    fd_.reset();
    return status;
  }
  return reply;
}

void TcpStoreClient::MarkBroken(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (broken_.ok()) broken_ = status;
  fd_.reset();
}

absl::Status TcpStoreClient::UnexpectedReply(const Reply& reply, const std::string& operation) const {
  if (reply.code == uint8_t(wire::ReplyCode::kError)) {
    absl::StatusOr<std::string> message = wire::DecodeErrorMessage(reply.body);
    if (message.ok()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: %s: server refused: %s", Describe(), operation, *message));
    }
  }
  return absl::DataLossError(
      absl::StrFormat("%s: %s: unexpected reply code %d from the store server", Describe(), operation, reply.code));
}

}  // namespace silk::bootstrap
