// The int8/int4 group loops of BlockQuantizer in AVX2 (quantizer_simd.h).
// Every float operation is the scalar code's, in the same order, one value per
// lane (no reassociation, no fused multiply-add), so the codes, the values left
// decoded and the residuals are the same bits as quantizer.cc's scalar loops
// (tests/collectives/quantizer_test.cc compares them).
#include "collectives/compression/quantizer_simd.h"

#if !defined(__x86_64__)

namespace silk::compression_internal {
uint32_t AddResidualAbsMaxBitsAvx2(float*, const float*, size_t) { return 0; }
void QuantizeCodesAvx2(float*, float*, size_t, float, float, int, bool, uint8_t*) {}
void DecodeCodesAvx2(const uint8_t*, size_t, float, bool, float*) {}
}  // namespace silk::compression_internal

#else

#include <immintrin.h>

#include <cstring>

#pragma GCC push_options
#pragma GCC target("avx2")

namespace silk::compression_internal {
namespace {

// Adding and subtracting 1.5 * 2^23 rounds to an integer, ties to even (as in
// quantizer.cc); an exact zero comes out +0, never -0.
constexpr float kRoundMagic = 12582912.0f;

// 32 int32 codes in [-127, 127] (four vectors of 8) to 32 bytes in order.
__m256i PackCodes(__m256i c0, __m256i c1, __m256i c2, __m256i c3) {
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(c0, c1), _mm256_packs_epi32(c2, c3));
  // Within each 128-bit half the packs interleave by four: put the dwords back in order.
  return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 64 int8 codes in [-8, 7] (two vectors of 32) to 32 bytes, two per byte, the first in the low nibble.
__m256i PackNibbles(__m256i a, __m256i b) {
  const __m256i low = _mm256_set1_epi16(0x000f), high = _mm256_set1_epi16(0x00f0);
  const __m256i wa = _mm256_or_si256(_mm256_and_si256(a, low), _mm256_and_si256(_mm256_srli_epi16(a, 4), high));
  const __m256i wb = _mm256_or_si256(_mm256_and_si256(b, low), _mm256_and_si256(_mm256_srli_epi16(b, 4), high));
  return _mm256_permute4x64_epi64(_mm256_packus_epi16(wa, wb), 0xd8);
}

}  // namespace

uint32_t AddResidualAbsMaxBitsAvx2(float* x, const float* residual, size_t n) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  __m256i best = _mm256_setzero_si256();
  for (size_t i = 0; i < n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (residual != nullptr) {
      v = _mm256_add_ps(v, _mm256_loadu_ps(residual + i));
      _mm256_storeu_ps(x + i, v);
    }
    // |x|'s bits order as |x| does, with Inf above every finite value and NaN above Inf.
    best = _mm256_max_epu32(best, _mm256_and_si256(_mm256_castps_si256(v), abs_mask));
  }
  uint32_t lanes[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), best);
  uint32_t m = 0;
  for (uint32_t lane : lanes) m = lane > m ? lane : m;
  return m;
}

void QuantizeCodesAvx2(float* x, float* residual, size_t n, float scale, float inverse, int qmax, bool int4,
                       uint8_t* out) {
  const __m256 vscale = _mm256_set1_ps(scale), vinverse = _mm256_set1_ps(inverse);
  const __m256 hi = _mm256_set1_ps(static_cast<float>(qmax)), lo = _mm256_set1_ps(-static_cast<float>(qmax));
  const __m256 magic = _mm256_set1_ps(kRoundMagic);
  auto codes8 = [&](size_t i) {  // values i..i+7: coded, left decoded, residual updated
    const __m256 v = _mm256_loadu_ps(x + i);
    // std::clamp(v * inverse, -qmax, qmax): the product is finite here.
    const __m256 c = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, vinverse), lo), hi);
    const __m256 q = _mm256_sub_ps(_mm256_add_ps(c, magic), magic);
    const __m256 decoded = _mm256_mul_ps(q, vscale);
    if (residual != nullptr) _mm256_storeu_ps(residual + i, _mm256_sub_ps(v, decoded));
    _mm256_storeu_ps(x + i, decoded);
    return _mm256_cvttps_epi32(q);
  };
  for (size_t i = 0; i < n; i += 64) {
    const __m256i a = PackCodes(codes8(i), codes8(i + 8), codes8(i + 16), codes8(i + 24));
    const __m256i b = PackCodes(codes8(i + 32), codes8(i + 40), codes8(i + 48), codes8(i + 56));
    if (int4) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 2), PackNibbles(a, b));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), a);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i + 32), b);
    }
  }
}

void DecodeCodesAvx2(const uint8_t* in, size_t n, float scale, bool int4, float* y) {
  const __m256 vscale = _mm256_set1_ps(scale);
  if (!int4) {
    for (size_t i = 0; i < n; i += 8) {
      const __m256i c = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + i)));
      _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(c), vscale));
    }
    return;
  }
  for (size_t i = 0; i < n; i += 16) {  // 8 bytes: 16 codes
    const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + i / 2)));
    const __m256i first = _mm256_srai_epi32(_mm256_slli_epi32(bytes, 28), 28);   // low nibbles, sign-extended
    const __m256i second = _mm256_srai_epi32(_mm256_slli_epi32(bytes, 24), 28);  // high nibbles
    // Interleave: byte j gives values 2j and 2j + 1.
    const __m256i l = _mm256_unpacklo_epi32(first, second), h = _mm256_unpackhi_epi32(first, second);
    const __m256i v0 = _mm256_permute2x128_si256(l, h, 0x20), v1 = _mm256_permute2x128_si256(l, h, 0x31);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v0), vscale));
    _mm256_storeu_ps(y + i + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(v1), vscale));
  }
}

}  // namespace silk::compression_internal

#pragma GCC pop_options

#endif  // __x86_64__
