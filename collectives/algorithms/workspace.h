// Scratch memory of one operation. It belongs to the operation's closure, not
// to the algorithm's stack frame, so it outlives the engine's wait for
// outstanding requests after a failure: a late receive never lands in freed memory.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace silk::algorithms {

class Workspace {
 public:
  // A buffer of `bytes` (uninitialised) that lives as long as the operation.
  char* Allocate(size_t bytes) {
    buffers_.push_back(std::make_unique_for_overwrite<char[]>(bytes == 0 ? 1 : bytes));
    return buffers_.back().get();
  }

 private:
  std::vector<std::unique_ptr<char[]>> buffers_;
};

}  // namespace silk::algorithms
