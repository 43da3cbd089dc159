#include "runtime/transport/tcp/resend_buffer.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"

namespace silk::transport::tcp {

void ResendBuffer::Append(const char* data, size_t bytes) {
  while (bytes > 0) {
    const uint64_t used = end_ - first_block_;
    const size_t in_last = used % kBlockBytes;
    if (used == blocks_.size() * kBlockBytes) blocks_.push_back(std::make_unique<char[]>(kBlockBytes));
    const size_t take = std::min(bytes, kBlockBytes - in_last);
    std::memcpy(blocks_.back().get() + in_last, data, take);
    data += take;
    bytes -= take;
    end_ += take;
  }
  resend_from_ = end_;
}

absl::Status ResendBuffer::Release(uint64_t offset) {
  if (offset > resend_from_) {
    return WithKind(absl::DataLossError(absl::StrFormat(
                        "the peer confirms %d bytes of a lane on which %d were sent", offset, resend_from_)),
                    ErrorKind::kProtocol);
  }
  if (offset <= base_) return absl::OkStatus();  // an older confirmation
  base_ = offset;
  while (!blocks_.empty() && first_block_ + kBlockBytes <= base_) {
    blocks_.pop_front();
    first_block_ += kBlockBytes;
  }
  return absl::OkStatus();
}

absl::Status ResendBuffer::Rewind(uint64_t offset) {
  if (offset < base_ || offset > end_) {
    return WithKind(absl::DataLossError(absl::StrFormat(
                        "the peer resumes a lane at byte %d, but this side holds bytes %d to %d only", offset,
                        base_, end_)),
                    ErrorKind::kProtocol);
  }
  resend_from_ = offset;
  return Release(offset);
}

std::pair<const char*, size_t> ResendBuffer::Locate(uint64_t offset) const {
  const uint64_t relative = offset - first_block_;
  return {blocks_[relative / kBlockBytes].get(), static_cast<size_t>(relative % kBlockBytes)};
}

absl::string_view ResendBuffer::ToResend() const {
  if (!resending()) return {};
  auto [block, at] = Locate(resend_from_);
  const size_t length = static_cast<size_t>(std::min<uint64_t>(kBlockBytes - at, end_ - resend_from_));
  return absl::string_view(block + at, length);
}

void ResendBuffer::Resent(size_t bytes) { resend_from_ = std::min<uint64_t>(resend_from_ + bytes, end_); }

}  // namespace silk::transport::tcp
