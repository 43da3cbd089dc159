#include "collectives/algorithms/workspace.h"

namespace silk::algorithms {

Workspace::~Workspace() = default;  // buffers not recycled are freed with their slots

char* Workspace::Allocate(size_t bytes) {
  Slot* best = nullptr;
  for (Slot& slot : slots_) {
    if (slot.in_use || slot.buffer.capacity < bytes || slot.buffer.capacity > 2 * bytes + 4096) continue;
    if (best == nullptr || slot.buffer.capacity < best->buffer.capacity) best = &slot;
  }
  if (best == nullptr) {
    slots_.push_back(Slot{pool_.Take(bytes), false});
    best = &slots_.back();
  }
  best->in_use = true;
  return best->buffer.data.get();
}

void Workspace::Release(char* buffer) {
  for (Slot& slot : slots_) {
    if (slot.buffer.data.get() == buffer) slot.in_use = false;
  }
}

void Workspace::Recycle() {
  for (Slot& slot : slots_) pool_.Give(std::move(slot.buffer));
  slots_.clear();
}

}  // namespace silk::algorithms
