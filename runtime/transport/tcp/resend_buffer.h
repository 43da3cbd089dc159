// What a lane across a long link has written but its peer has not yet
// confirmed, so that the lane's byte stream survives a new connection: after
// a cut, the TCP connection is replaced (ResumeLane) and the bytes after the
// peer's count go again, on the new connection, before anything new.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace silk::transport::tcp {

class ResendBuffer {
 public:
  // Bytes just written to the connection for the first time (not while resending).
  void Append(const char* data, size_t bytes);
  // The peer has received the first `offset` bytes of the stream: they are
  // dropped. An offset past what was sent is a protocol error.
  absl::Status Release(uint64_t offset);
  // A new connection: the peer has the first `offset` bytes; everything after
  // goes again. An offset outside what is held is a protocol error.
  absl::Status Rewind(uint64_t offset);

  // The next bytes to resend (contiguous; empty once caught up).
  absl::string_view ToResend() const;
  void Resent(size_t bytes);
  bool resending() const { return resend_from_ < end_; }

  uint64_t end() const { return end_; }    // stream bytes sent so far
  uint64_t held() const { return end_ - base_; }

 private:
  static constexpr size_t kBlockBytes = size_t{1} << 20;

  // The block holding stream offset `offset` (base_ <= offset < end_) and the offset within it.
  std::pair<const char*, size_t> Locate(uint64_t offset) const;

  std::deque<std::unique_ptr<char[]>> blocks_;  // blocks_[0] starts at stream offset first_block_
  uint64_t first_block_ = 0;
  uint64_t base_ = 0;         // first byte still held
  uint64_t end_ = 0;          // one past the last byte sent
  uint64_t resend_from_ = 0;  // next byte to resend; == end_ when not resending
};

}  // namespace silk::transport::tcp
