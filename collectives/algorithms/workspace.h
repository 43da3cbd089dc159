// Scratch memory of one operation. It belongs to the operation's closure, not
// to the algorithm's stack frame, so it outlives the engine's wait for
// outstanding requests after a failure: a late receive never lands in freed memory.
//
// Buffers come from a ScratchPool (already mapped, see scratch_pool.h). An
// algorithm that knows no request still touches a buffer may Release it for
// reuse within the operation; once the operation has succeeded, Recycle hands
// everything back to the pool. A failed operation's buffers are only freed,
// when the closure goes.
#pragma once

#include <cstddef>
#include <vector>

#include "collectives/algorithms/scratch_pool.h"

namespace silk::algorithms {

class Workspace {
 public:
  explicit Workspace(ScratchPool& pool = ScratchPool::Default()) : pool_(pool) {}
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // A buffer of `bytes` (uninitialised) that lives as long as the operation.
  char* Allocate(size_t bytes);
  // `buffer` (from Allocate) is no longer used by anyone: a later Allocate of
  // this operation may return it.
  void Release(char* buffer);
  // The operation succeeded: nothing refers to any buffer any more.
  void Recycle();

 private:
  struct Slot {
    ScratchPool::Buffer buffer;
    bool in_use = false;
  };
  ScratchPool& pool_;
  std::vector<Slot> slots_;
};

}  // namespace silk::algorithms
