// Scratch buffers kept between operations. A fresh multi-megabyte buffer costs
// a page fault and a zeroed page for every 4 KB the first time it is touched:
// for a 256 MB all-reduce across regions that was a third of all CPU time.
// Operations that ended well hand their buffers back here; the next ones take
// them again, already mapped. Process-wide, like the allocator it sits on.
#pragma once

#include <atomic>
#include <cstddef>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace silk::algorithms {

class ScratchPool {
 public:
  // Buffers smaller than this come from the allocator directly: it is fast for them.
  static constexpr size_t kMinPooledBytes = 64 << 10;

  explicit ScratchPool(size_t max_idle_bytes) : max_idle_bytes_(max_idle_bytes) {}
  // The pool every Workspace draws from; each launch sets its bound from the
  // communicator's Config (SILK_SCRATCH_POOL_MB, 1 GiB by default).
  static ScratchPool& Default();
  // Buffers given back beyond this many idle bytes are freed (those idle now stay).
  void SetMaxIdleBytes(size_t bytes) { max_idle_bytes_.store(bytes, std::memory_order_relaxed); }

  struct Buffer {
    std::unique_ptr<char[]> data;
    size_t capacity = 0;
  };
  // An idle buffer of at least `bytes` (but not wastefully larger), else a new
  // one. Contents are unspecified.
  Buffer Take(size_t bytes);
  // Keeps `buffer` for later, unless that would exceed the idle bound.
  void Give(Buffer buffer);

  size_t idle_bytes() const;

 private:
  std::atomic<size_t> max_idle_bytes_;
  mutable absl::Mutex mu_;
  std::multimap<size_t, std::unique_ptr<char[]>> idle_ ABSL_GUARDED_BY(mu_);  // by capacity
  size_t idle_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace silk::algorithms
