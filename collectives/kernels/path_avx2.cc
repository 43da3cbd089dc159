// The AVX2 path (with F16C): 8 float lanes. The structure mirrors
// path_avx512.cc; see there for the rules about the target region.
#include "collectives/kernels/kernel_table.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "collectives/kernels/element_ops.h"

#pragma GCC push_options
#pragma GCC target("avx2,f16c")

namespace silk::kernels::internal {
namespace {

#include "collectives/kernels/elementwise.inc"

struct Avx2 {
  template <class T>
  static constexpr size_t kLanes = sizeof(T) == 8 ? 4 : 8;

  template <class T>
  static auto Load(const std::byte* p) {
    if constexpr (std::is_same_v<T, float>) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    } else if constexpr (std::is_same_v<T, double>) {
      return _mm256_loadu_pd(reinterpret_cast<const double*>(p));
    } else if constexpr (std::is_same_v<T, Float16>) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    } else {
      static_assert(std::is_same_v<T, BFloat16>);
      const __m256i widened = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      return _mm256_castsi256_ps(_mm256_slli_epi32(widened, 16));
    }
  }

  template <class T, class V>
  static void Store(std::byte* p, V v) {
    if constexpr (std::is_same_v<T, float>) {
      _mm256_storeu_ps(reinterpret_cast<float*>(p), v);
    } else if constexpr (std::is_same_v<T, double>) {
      _mm256_storeu_pd(reinterpret_cast<double*>(p), v);
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), Narrow16<T>(v));
    }
  }

  // Non-temporal store; p is aligned to the store width (32 or 16 bytes).
  template <class T, class V>
  static void Stream(std::byte* p, V v) {
    if constexpr (std::is_same_v<T, float>) {
      _mm256_stream_ps(reinterpret_cast<float*>(p), v);
    } else if constexpr (std::is_same_v<T, double>) {
      _mm256_stream_pd(reinterpret_cast<double*>(p), v);
    } else {
      _mm_stream_si128(reinterpret_cast<__m128i*>(p), Narrow16<T>(v));
    }
  }

  // float32 -> float16 or bfloat16, as in path_avx512.cc.
  template <class T>
  static __m128i Narrow16(__m256 v) {
    if constexpr (std::is_same_v<T, Float16>) {
      return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    } else {
      static_assert(std::is_same_v<T, BFloat16>);
      const __m256i bits = _mm256_castps_si256(v);
      const __m256i rounded = _mm256_srli_epi32(AddRoundingBias(bits), 16);
      const __m256i quiet_nan = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
      const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      const __m256i result = _mm256_blendv_epi8(rounded, quiet_nan, is_nan);
      // Every lane is below 2^16, so the signed-saturating pack is exact.
      return _mm_packus_epi32(_mm256_castsi256_si128(result), _mm256_extracti128_si256(result, 1));
    }
  }

  // 16 bfloat16 as two float vectors: even elements, then odd ones (see
  // path_avx512.cc).
  static void LoadBFloat16Pair(const std::byte* p, __m256& even, __m256& odd) {
    const __m256i pairs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    even = _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16));
    odd = _mm256_castsi256_ps(_mm256_and_si256(pairs, _mm256_set1_epi32(int32_t(0xFFFF0000))));
  }

  // The inverse; NaNs must be canonical already. kStream needs p 32-byte aligned.
  template <bool kStream>
  static void StoreBFloat16Pair(std::byte* p, __m256 even, __m256 odd) {
    const __m256i rounded_even = _mm256_srli_epi32(AddRoundingBias(_mm256_castps_si256(even)), 16);
    const __m256i rounded_odd = AddRoundingBias(_mm256_castps_si256(odd));
    const __m256i pairs = _mm256_or_si256(
        rounded_even, _mm256_and_si256(rounded_odd, _mm256_set1_epi32(int32_t(0xFFFF0000))));
    if constexpr (kStream) {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(p), pairs);
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), pairs);
    }
  }

  // bits + 0x7FFF + (bit 16 of bits): the top half is then bits rounded to
  // nearest even (as in FloatToBFloat16Bits).
  static __m256i AddRoundingBias(__m256i bits) {
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    return _mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF)));
  }

  static __m256 Splat(float x) { return _mm256_set1_ps(x); }
  static __m256d Splat(double x) { return _mm256_set1_pd(x); }

  static __m256 Add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  static __m256d Add(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
  static __m256 Mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
  static __m256d Mul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }
  static __m256 Div(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
  static __m256d Div(__m256d a, __m256d b) { return _mm256_div_pd(a, b); }

  static __m256 CanonicalizeNan(__m256 v) {
    return _mm256_blendv_ps(v, Splat(CanonicalNan<float>()), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static __m256d CanonicalizeNan(__m256d v) {
    return _mm256_blendv_pd(v, Splat(CanonicalNan<double>()), _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
  }

  // See Minimum/Maximum in element_ops.h and path_avx512.cc.
  static __m256 Minimum(__m256 a, __m256 b) {
    __m256 r = _mm256_min_ps(a, b);
    r = _mm256_blendv_ps(r, _mm256_or_ps(a, b), _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
    return _mm256_blendv_ps(r, Splat(CanonicalNan<float>()), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
  }
  static __m256d Minimum(__m256d a, __m256d b) {
    __m256d r = _mm256_min_pd(a, b);
    r = _mm256_blendv_pd(r, _mm256_or_pd(a, b), _mm256_cmp_pd(a, b, _CMP_EQ_OQ));
    return _mm256_blendv_pd(r, Splat(CanonicalNan<double>()), _mm256_cmp_pd(a, b, _CMP_UNORD_Q));
  }
  static __m256 Maximum(__m256 a, __m256 b) {
    __m256 r = _mm256_max_ps(a, b);
    r = _mm256_blendv_ps(r, _mm256_and_ps(a, b), _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
    return _mm256_blendv_ps(r, Splat(CanonicalNan<float>()), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
  }
  static __m256d Maximum(__m256d a, __m256d b) {
    __m256d r = _mm256_max_pd(a, b);
    r = _mm256_blendv_pd(r, _mm256_and_pd(a, b), _mm256_cmp_pd(a, b, _CMP_EQ_OQ));
    return _mm256_blendv_pd(r, Splat(CanonicalNan<double>()), _mm256_cmp_pd(a, b, _CMP_UNORD_Q));
  }
};

using Isa = Avx2;

#include "collectives/kernels/simd_loops.inc"

}  // namespace
}  // namespace silk::kernels::internal

#pragma GCC pop_options

namespace silk::kernels::internal {
const KernelTable* Avx2Kernels() { return &TableFor<SimdLoops>::kTable; }
}  // namespace silk::kernels::internal

#else  // not x86-64: no AVX2 path

namespace silk::kernels::internal {
const KernelTable* Avx2Kernels() { return nullptr; }
}  // namespace silk::kernels::internal

#endif
