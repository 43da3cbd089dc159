#include "collectives/algorithms/scratch_pool.h"

namespace silk::algorithms {

ScratchPool& ScratchPool::Default() {
  static ScratchPool* const pool = new ScratchPool(size_t{1} << 30);  // never destroyed: used until exit
  return *pool;
}

ScratchPool::Buffer ScratchPool::Take(size_t bytes) {
  if (bytes >= kMinPooledBytes) {
    absl::MutexLock lock(&mu_);
    auto it = idle_.lower_bound(bytes);
    // Best fit, and never more than twice what is asked: a small request must
    // not pin a large buffer that a later large one needs.
    if (it != idle_.end() && it->first <= 2 * bytes) {
      Buffer buffer{std::move(it->second), it->first};
      idle_bytes_ -= it->first;
      idle_.erase(it);
      return buffer;
    }
  }
  const size_t capacity = bytes == 0 ? 1 : bytes;
  return Buffer{std::make_unique_for_overwrite<char[]>(capacity), capacity};
}

void ScratchPool::Give(Buffer buffer) {
  if (buffer.capacity < kMinPooledBytes || buffer.data == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (idle_bytes_ + buffer.capacity > max_idle_bytes_.load(std::memory_order_relaxed)) return;  // freed here
  idle_bytes_ += buffer.capacity;
  idle_.emplace(buffer.capacity, std::move(buffer.data));
}

size_t ScratchPool::idle_bytes() const {
  absl::MutexLock lock(&mu_);
  return idle_bytes_;
}

}  // namespace silk::algorithms
