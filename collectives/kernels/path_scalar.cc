// The portable path: plain C++ element loops, the reference the SIMD paths
// must match. (The compiler may still vectorise it for the baseline ISA.)
#include <cstddef>

#include "collectives/kernels/element_ops.h"
#include "collectives/kernels/kernel_table.h"

namespace silk::kernels::internal {
namespace {

#include "collectives/kernels/elementwise.inc"

}  // namespace

const KernelTable& ScalarKernels() { return TableFor<ElementwiseLoops>::kTable; }

}  // namespace silk::kernels::internal
