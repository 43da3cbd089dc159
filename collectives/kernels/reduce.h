// Element-wise reduction kernels: the arithmetic inside every reducing
// collective (all-reduce, reduce-scatter, reduce). Vectorised for AVX2 and
// AVX-512 and chosen at run time; every path gives bit-identical results, so
// ranks on different CPUs agree.
//
// Semantics, for every DataType x ReduceOp:
//  - Pointers need no alignment (not even to the element size); count may be 0.
//  - Integers: sum and prod wrap around (two's complement), min/max are exact.
//  - float32/float64 use their own IEEE arithmetic. float16/bfloat16 are
//    widened to float32, combined, and rounded once (to nearest even) per
//    element per call; float32 is wide enough that this equals the correctly
//    rounded 16-bit result.
//  - kAvg reduces like kSum: a collective sums, then the owner of each result
//    calls Scale() once with the number of contributions.
//  - min/max follow IEEE 754-2019 minimum/maximum: NaN wins, and -0 < +0.
//  - Every NaN a kernel produces is the canonical quiet NaN (positive sign,
//    payload: quiet bit only, e.g. 0x7FC00000 for float32), whatever the NaN
//    inputs were. Payloads are not portable across CPUs; canonical NaNs are.
//  - Subnormals are kept. Callers must not run with FTZ/DAZ set in MXCSR.
//
// The functions abort on a DataType or ReduceOp value outside the enums, and on
// the preconditions stated below: these are programming errors, and the
// collective layer validates what arrives from the wire before calling here.
#pragma once

#include <cstddef>

#include "runtime/core/types.h"

namespace silk::kernels {

// dst[i] = dst[i] (op) src[i].
void ReduceInto(DataType type, ReduceOp op, void* dst, const void* src, size_t count);

// dst[i] = a[i] (op) b[i]. dst may be exactly a or b (or both); no other
// overlap is allowed. For large buffers with a separate dst, the result is
// written with non-temporal stores (it will not be in cache afterwards).
void Reduce(DataType type, ReduceOp op, void* dst, const void* a, const void* b, size_t count);

// data[i] = data[i] / divisor, the second half of ReduceOp::kAvg; divisor >= 1.
// Integers divide with truncation toward zero (-7 / 2 == -3), computed exactly
// whatever the divisor. float32/float64 divide in their own arithmetic;
// float16/bfloat16 divide in float32 and round once.
void Scale(DataType type, void* data, size_t count, int divisor);

// Widening helpers, for algorithms that accumulate many 16-bit inputs in
// float32 and round once at the end. `type` must be kFloat16 or kBFloat16
// (kFloat32 is accepted too and is a plain copy or reduction); the float and
// 16-bit buffers must not overlap. Conversions are exactly those of
// kernels/float16.h (NaN payloads kept); AccumulateToFloat follows the rules
// above (kAvg sums, NaN results are canonical).
void ConvertToFloat(DataType type, float* dst, const void* src, size_t count);
void AccumulateToFloat(DataType type, ReduceOp op, float* acc, const void* src, size_t count);
void ConvertFromFloat(DataType type, void* dst, const float* src, size_t count);

// Which implementation runs. kAuto picks the widest one the CPU supports.
enum class KernelPath { kAuto, kScalar, kAvx2, kAvx512 };

const char* KernelPathName(KernelPath path);
bool IsKernelPathAvailable(KernelPath path);
// The path the kernels use now (never kAuto).
KernelPath ActiveKernelPath();
// Forces a path for every thread (kAuto restores the default). Returns false,
// changing nothing, if this CPU cannot run it. For tests and benchmarks.
bool SetKernelPathForTesting(KernelPath path);

}  // namespace silk::kernels
