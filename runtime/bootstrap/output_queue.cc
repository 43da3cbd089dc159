#include "runtime/bootstrap/output_queue.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <utility>

namespace silk::bootstrap {
namespace {
// Pieces handed to one sendmsg(); a reply of many values is many pieces.
constexpr size_t kMaxPiecesPerSend = 64;
// Small copies are merged into the last chunk while it stays below this.
constexpr size_t kMergeLimitBytes = 64 << 10;
}  // namespace

void OutputQueue::AppendCopy(absl::string_view bytes) {
  if (bytes.empty()) return;
  // Appending to a partly sent chunk is fine: offsets into it stay valid.
  const bool can_merge = !chunks_.empty() && !chunks_.back().shared &&
                         chunks_.back().owned.size() + bytes.size() <= kMergeLimitBytes;
  if (!can_merge) chunks_.emplace_back();
  chunks_.back().owned.append(bytes.data(), bytes.size());
}

void OutputQueue::AppendShared(std::shared_ptr<const std::string> bytes) {
  if (bytes == nullptr || bytes->empty()) return;
  Chunk chunk;
  chunk.shared = std::move(bytes);
  chunks_.push_back(std::move(chunk));
}

void OutputQueue::Clear() {
  chunks_.clear();
  front_sent_ = 0;
}

int OutputQueue::SendSome(int fd) {
  while (!chunks_.empty()) {
    iovec pieces[kMaxPiecesPerSend];
    size_t count = 0;
    for (auto it = chunks_.begin(); it != chunks_.end() && count < kMaxPiecesPerSend; ++it, ++count) {
      absl::string_view bytes = it->bytes();
      if (count == 0) bytes.remove_prefix(front_sent_);
      pieces[count] = {const_cast<char*>(bytes.data()), bytes.size()};
    }
    msghdr message{};
    message.msg_iov = pieces;
    message.msg_iovlen = count;
    ssize_t sent = sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno;
    }
    if (sent == 0) return 0;
    // Retire what was sent: whole chunks, then part of the new front.
    size_t left = static_cast<size_t>(sent);
    while (left > 0) {
      const size_t front_left = chunks_.front().bytes().size() - front_sent_;
      if (left < front_left) {
        front_sent_ += left;
        break;
      }
      left -= front_left;
      chunks_.pop_front();
      front_sent_ = 0;
    }
  }
  return 0;
}

}  // namespace silk::bootstrap
