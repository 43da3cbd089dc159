// BlockQuantizer's int8/int4 group loops with 8 float lanes (AVX2), used by
// quantizer.cc where the kernels have AVX2 (kernels::IsKernelPathAvailable)
// and their path is not forced to scalar (kernels::SetKernelPathForTesting).
// They give the scalar loops' bits; without x86 they are empty and unused.
// Internal to collectives/compression.
#pragma once

#include <cstddef>
#include <cstdint>

namespace silk::compression_internal {

// x[i] += residual[i] (residual may be null), and the largest of the
// results' |x| as float bits (NaN above Inf above every finite value). n % 8 == 0.
uint32_t AddResidualAbsMaxBitsAvx2(float* x, const float* residual, size_t n);
// Codes a finite group of n values (n % 64 == 0) with a normal `scale` and
// inverse = 1 / scale: codes to `out` (int8, or int4 two per byte), x left
// decoded, residual (may be null) set to what was lost.
void QuantizeCodesAvx2(float* x, float* residual, size_t n, float scale, float inverse, int qmax, bool int4,
                       uint8_t* out);
// Decodes n codes (n % 16 == 0) of one group with its scale.
void DecodeCodesAvx2(const uint8_t* in, size_t n, float scale, bool int4, float* y);

}  // namespace silk::compression_internal
