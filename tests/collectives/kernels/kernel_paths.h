// Runs a test once per kernel implementation path; a path this CPU cannot
// run is skipped (and says so).
#pragma once

#include <gtest/gtest.h>

#include <ostream>

#include "collectives/kernels/reduce.h"
#include "runtime/core/types.h"

namespace silk::kernels {
// Readable parameters in test names' failure output.
inline void PrintTo(KernelPath path, std::ostream* os) { *os << KernelPathName(path); }
}  // namespace silk::kernels

namespace silk {
inline void PrintTo(DataType type, std::ostream* os) { *os << DataTypeName(type); }
}  // namespace silk

namespace silk::kernels::testing {

// Every concrete path (kAuto is one of them; KernelPathTest checks which).
inline constexpr KernelPath kAllPaths[] = {KernelPath::kScalar, KernelPath::kAvx2, KernelPath::kAvx512};

// Forces a path for the scope of a test; restores automatic choice after.
class ScopedKernelPath {
 public:
  explicit ScopedKernelPath(KernelPath path) : available_(SetKernelPathForTesting(path)) {}
  ~ScopedKernelPath() { SetKernelPathForTesting(KernelPath::kAuto); }
  ScopedKernelPath(const ScopedKernelPath&) = delete;
  ScopedKernelPath& operator=(const ScopedKernelPath&) = delete;

  bool available() const { return available_; }

 private:
  bool available_;
};

#define SILK_USE_KERNEL_PATH_OR_SKIP(path)                                                  \
  ::silk::kernels::testing::ScopedKernelPath scoped_kernel_path(path);                      \
  if (!scoped_kernel_path.available()) {                                                     \
    GTEST_SKIP() << "this CPU cannot run the " << ::silk::kernels::KernelPathName(path) << " path"; \
  }

}  // namespace silk::kernels::testing
