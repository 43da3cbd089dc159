#include "collectives/algorithms/scratch_pool.h"

#include <cstdlib>
#include <string>

namespace silk::algorithms {
namespace {

size_t DefaultIdleBytes() {
  const char* text = std::getenv("SILK_SCRATCH_POOL_MB");
  if (text == nullptr || *text == '\0') return size_t{1024} << 20;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(text, &end, 10);
  return end != nullptr && *end == '\0' ? static_cast<size_t>(mb) << 20 : size_t{1024} << 20;
}

}  // namespace

ScratchPool& ScratchPool::Default() {
  static ScratchPool* const pool = new ScratchPool(DefaultIdleBytes());  // never destroyed: used until exit
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
  if (idle_bytes_ + buffer.capacity > max_idle_bytes_) return;  // freed here
  idle_bytes_ += buffer.capacity;
  idle_.emplace(buffer.capacity, std::move(buffer.data));
}

size_t ScratchPool::idle_bytes() const {
  absl::MutexLock lock(&mu_);
  return idle_bytes_;
}

}  // namespace silk::algorithms
