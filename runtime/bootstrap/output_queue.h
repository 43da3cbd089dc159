// Bytes waiting to be sent on one store connection. Values are queued by
// reference (shared with the store's map), never copied: when every rank of a
// large job gets the same N values at once, the server holds them once, not
// once per rank.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace silk::bootstrap {

class OutputQueue {
 public:
  // Copies small pieces (headers, lengths), merging neighbours.
  void AppendCopy(absl::string_view bytes);
  // Queues a shared value without copying it.
  void AppendShared(std::shared_ptr<const std::string> bytes);

  bool empty() const { return chunks_.empty(); }
  void Clear();

  // Sends as much as the non-blocking socket takes. Returns 0 when all was
  // sent or the socket is full, else the errno of the failed send.
  int SendSome(int fd);

 private:
  struct Chunk {
    std::string owned;
    std::shared_ptr<const std::string> shared;  // set: send this instead of `owned`
    absl::string_view bytes() const { return shared ? absl::string_view(*shared) : absl::string_view(owned); }
  };

  std::deque<Chunk> chunks_;
  size_t front_sent_ = 0;  // bytes of chunks_.front() already sent
};

}  // namespace silk::bootstrap
