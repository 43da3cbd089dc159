// The AVX-512 path (F, BW, VL, DQ): 16 float lanes; float16 through the
// 512-bit F16C-style conversions of AVX-512F. Everything defined in this
// file's target region is compiled for AVX-512; reduce.cc only calls it on a
// CPU that has it. Headers are included before the region so that no inline
// function they define is ever compiled with AVX-512 instructions.
#include "collectives/kernels/kernel_table.h"

#if defined(__x86_64__)

// GCC 12's AVX-512 headers self-initialise their "undefined" vectors, which
// -Wmaybe-uninitialized misreads (GCC bug 105593, fixed in 12.3 and 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "collectives/kernels/element_ops.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,f16c")

namespace silk::kernels::internal {
namespace {

#include "collectives/kernels/elementwise.inc"

struct Avx512 {
  // Lanes per vector of the compute type: 16 floats (also for 16-bit
  // storage, loaded 16 at a time and widened) or 8 doubles.
  template <class T>
  static constexpr size_t kLanes = sizeof(T) == 8 ? 8 : 16;

  template <class T>
  static auto Load(const std::byte* p) {
    if constexpr (std::is_same_v<T, float>) {
      return _mm512_loadu_ps(p);
    } else if constexpr (std::is_same_v<T, double>) {
      return _mm512_loadu_pd(p);
    } else if constexpr (std::is_same_v<T, Float16>) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    } else {
      static_assert(std::is_same_v<T, BFloat16>);
      const __m512i widened = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      return _mm512_castsi512_ps(_mm512_slli_epi32(widened, 16));
    }
  }

  template <class T, class V>
  static void Store(std::byte* p, V v) {
    if constexpr (std::is_same_v<T, float>) {
      _mm512_storeu_ps(p, v);
    } else if constexpr (std::is_same_v<T, double>) {
      _mm512_storeu_pd(p, v);
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), Narrow16<T>(v));
    }
  }

  // Non-temporal store; p is aligned to the store width (64 or 32 bytes).
  template <class T, class V>
  static void Stream(std::byte* p, V v) {
    if constexpr (std::is_same_v<T, float>) {
      _mm512_stream_ps(reinterpret_cast<float*>(p), v);
    } else if constexpr (std::is_same_v<T, double>) {
      _mm512_stream_pd(reinterpret_cast<double*>(p), v);
    } else {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(p), Narrow16<T>(v));
    }
  }

  // float32 -> float16 or bfloat16, rounding to nearest even, NaN kept quiet;
  // the same as FloatToFloat16Bits / FloatToBFloat16Bits.
  template <class T>
  static __m256i Narrow16(__m512 v) {
    if constexpr (std::is_same_v<T, Float16>) {
      return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    } else {
      static_assert(std::is_same_v<T, BFloat16>);
      const __m512i bits = _mm512_castps_si512(v);
      const __m512i rounded = _mm512_srli_epi32(AddRoundingBias(bits), 16);
      const __m512i quiet_nan = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
      const __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, is_nan, quiet_nan));
    }
  }

  // 32 bfloat16 as two float vectors: even elements, then odd ones. Each
  // 32-bit lane holds one of each: shifting or masking widens it exactly.
  static void LoadBFloat16Pair(const std::byte* p, __m512& even, __m512& odd) {
    const __m512i pairs = _mm512_loadu_si512(p);
    even = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
    odd = _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(int32_t(0xFFFF0000))));
  }

  // The inverse, rounding to nearest even; NaNs must be canonical already
  // (the rounding keeps 0x7FC00000 a NaN). kStream needs p 64-byte aligned.
  template <bool kStream>
  static void StoreBFloat16Pair(std::byte* p, __m512 even, __m512 odd) {
    const __m512i rounded_even = _mm512_srli_epi32(AddRoundingBias(_mm512_castps_si512(even)), 16);
    const __m512i rounded_odd = AddRoundingBias(_mm512_castps_si512(odd));
    // rounded_even | (rounded_odd & 0xFFFF0000) in one instruction.
    const __m512i pairs = _mm512_ternarylogic_epi32(rounded_even, rounded_odd,
                                                    _mm512_set1_epi32(int32_t(0xFFFF0000)), 0xF8);
    if constexpr (kStream) {
      _mm512_stream_si512(reinterpret_cast<__m512i*>(p), pairs);
    } else {
      _mm512_storeu_si512(p, pairs);
    }
  }

  // bits + 0x7FFF + (bit 16 of bits): the top half is then bits rounded to
  // nearest even (as in FloatToBFloat16Bits).
  static __m512i AddRoundingBias(__m512i bits) {
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    return _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
  }

  static __m512 Splat(float x) { return _mm512_set1_ps(x); }
  static __m512d Splat(double x) { return _mm512_set1_pd(x); }

  static __m512 Add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  static __m512d Add(__m512d a, __m512d b) { return _mm512_add_pd(a, b); }
  static __m512 Mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
  static __m512d Mul(__m512d a, __m512d b) { return _mm512_mul_pd(a, b); }
  static __m512 Div(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
  static __m512d Div(__m512d a, __m512d b) { return _mm512_div_pd(a, b); }

  static __m512 CanonicalizeNan(__m512 v) {
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), Splat(CanonicalNan<float>()));
  }
  static __m512d CanonicalizeNan(__m512d v) {
    return _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q), Splat(CanonicalNan<double>()));
  }

  // See Minimum/Maximum in element_ops.h. vminps alone returns its second
  // operand for NaNs and for equal values; the two masks fix both cases.
  static __m512 Minimum(__m512 a, __m512 b) {
    __m512 r = _mm512_min_ps(a, b);
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), _mm512_or_ps(a, b));
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), Splat(CanonicalNan<float>()));
  }
  static __m512d Minimum(__m512d a, __m512d b) {
    __m512d r = _mm512_min_pd(a, b);
    r = _mm512_mask_mov_pd(r, _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ), _mm512_or_pd(a, b));
    return _mm512_mask_mov_pd(r, _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q), Splat(CanonicalNan<double>()));
  }
  static __m512 Maximum(__m512 a, __m512 b) {
    __m512 r = _mm512_max_ps(a, b);
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), _mm512_and_ps(a, b));
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), Splat(CanonicalNan<float>()));
  }
  static __m512d Maximum(__m512d a, __m512d b) {
    __m512d r = _mm512_max_pd(a, b);
    r = _mm512_mask_mov_pd(r, _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ), _mm512_and_pd(a, b));
    return _mm512_mask_mov_pd(r, _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q), Splat(CanonicalNan<double>()));
  }
};

using Isa = Avx512;

#include "collectives/kernels/simd_loops.inc"

}  // namespace
}  // namespace silk::kernels::internal

#pragma GCC pop_options

namespace silk::kernels::internal {
const KernelTable* Avx512Kernels() { return &TableFor<SimdLoops>::kTable; }
}  // namespace silk::kernels::internal

#else  // not x86-64: no AVX-512 path

namespace silk::kernels::internal {
const KernelTable* Avx512Kernels() { return nullptr; }
}  // namespace silk::kernels::internal

#endif
