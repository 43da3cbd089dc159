// An independent statement of what the kernels must compute, written without
// the library's code: 16-bit formats are decoded and rounded through double
// arithmetic (ldexp / nearbyint) rather than bit manipulation, and integers
// use wider types. Tests compare every kernel path against these.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "runtime/core/types.h"

namespace silk::kernels::testing {

// A binary floating-point format of 16 bits: 1 sign, E exponent, M mantissa.
struct Format16 {
  int exponent_bits;
  int mantissa_bits;
  // float16 follows F16C, which quiets a signalling NaN as it widens;
  // bfloat16 widens by a plain shift, so every bit pattern is kept.
  bool widening_quiets_nan;

  int bias() const { return (1 << (exponent_bits - 1)) - 1; }
  uint32_t max_field() const { return (1u << exponent_bits) - 1; }
  uint16_t quiet_bit() const { return static_cast<uint16_t>(1u << (mantissa_bits - 1)); }
  uint16_t canonical_nan() const {
    return static_cast<uint16_t>((max_field() << mantissa_bits) | quiet_bit());
  }
  bool IsNan(uint16_t bits) const {
    return ((bits >> mantissa_bits) & max_field()) == max_field() &&
           (bits & ((1u << mantissa_bits) - 1)) != 0;
  }
};
inline constexpr Format16 kHalf{5, 10, true};
inline constexpr Format16 kBrain{8, 7, false};

// The exact value of a non-NaN 16-bit pattern.
inline double Decode(Format16 format, uint16_t bits) {
  const bool negative = (bits & 0x8000) != 0;
  const uint32_t field = (bits >> format.mantissa_bits) & format.max_field();
  const uint32_t mantissa = bits & ((1u << format.mantissa_bits) - 1);
  double magnitude;
  if (field == format.max_field()) {
    magnitude = mantissa == 0 ? INFINITY : NAN;
  } else if (field == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - format.bias() - format.mantissa_bits);
  } else {
    magnitude = std::ldexp(static_cast<double>(mantissa + (1u << format.mantissa_bits)),
                           static_cast<int>(field) - format.bias() - format.mantissa_bits);
  }
  return negative ? -magnitude : magnitude;
}

// Rounds a non-NaN value to the format: nearest, ties to even (nearbyint in
// the default rounding mode), overflow to infinity, subnormals kept.
inline uint16_t Encode(Format16 format, double value) {
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const double magnitude = std::fabs(value);
  const uint16_t infinity = static_cast<uint16_t>(sign | (format.max_field() << format.mantissa_bits));
  if (std::isinf(magnitude)) return infinity;
  if (magnitude == 0) return sign;
  int binade;
  std::frexp(magnitude, &binade);  // magnitude in [2^(binade-1), 2^binade)
  int exponent = std::max(binade - 1, 1 - format.bias());
  const double implicit_one = std::ldexp(1.0, format.mantissa_bits);
  double steps = std::nearbyint(magnitude / std::ldexp(1.0, exponent - format.mantissa_bits));
  if (steps == 2 * implicit_one) {  // rounded up into the next binade
    steps = implicit_one;
    ++exponent;
  }
  if (steps < implicit_one) return static_cast<uint16_t>(sign | static_cast<uint32_t>(steps));  // subnormal
  const uint32_t field = static_cast<uint32_t>(exponent + format.bias());
  if (field >= format.max_field()) return infinity;
  return static_cast<uint16_t>(sign | (field << format.mantissa_bits) |
                               static_cast<uint32_t>(steps - implicit_one));
}

// NaN conversions keep the sign and the payload (its top bits when
// narrowing); narrowing always sets the quiet bit, widening as noted above.
inline uint32_t WidenNanBits(Format16 format, uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t payload = bits & ((1u << format.mantissa_bits) - 1);
  const uint32_t quiet = format.widening_quiets_nan ? 0x00400000u : 0;
  return sign | 0x7F800000u | quiet | (payload << (23 - format.mantissa_bits));
}
inline uint16_t NarrowNanBits(Format16 format, uint32_t float_bits) {
  const uint16_t sign = static_cast<uint16_t>((float_bits >> 16) & 0x8000);
  const uint32_t payload = (float_bits & 0x7FFFFFu) >> (23 - format.mantissa_bits);
  return static_cast<uint16_t>(sign | (format.max_field() << format.mantissa_bits) | format.quiet_bit() |
                               payload);
}

inline uint32_t WidenBits(Format16 format, uint16_t bits) {
  if (format.IsNan(bits)) return WidenNanBits(format, bits);
  return std::bit_cast<uint32_t>(static_cast<float>(Decode(format, bits)));
}
inline uint16_t NarrowBits(Format16 format, float value) {
  if (std::isnan(value)) return NarrowNanBits(format, std::bit_cast<uint32_t>(value));
  return Encode(format, value);
}

// --- Reductions, one element at a time ---

template <class F>
F ReferenceNan() {
  return std::numeric_limits<F>::quiet_NaN();  // positive, quiet bit only, on every IEEE platform
}

// float32 / float64 arithmetic with the kernels' NaN and signed-zero rules.
template <class F>
F CombineReal(ReduceOp op, F a, F b) {
  if (std::isnan(a) || std::isnan(b)) return ReferenceNan<F>();
  F result = 0;
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg: result = a + b; break;
    case ReduceOp::kProd: result = a * b; break;
    case ReduceOp::kMin:
      if (a == 0 && b == 0) return (std::signbit(a) || std::signbit(b)) ? F(-0.0) : F(0.0);
      return std::fmin(a, b);
    case ReduceOp::kMax:
      if (a == 0 && b == 0) return (std::signbit(a) && std::signbit(b)) ? F(-0.0) : F(0.0);
      return std::fmax(a, b);
  }
  return std::isnan(result) ? ReferenceNan<F>() : result;
}

// float16 / bfloat16: exact widening, float32 arithmetic, one rounding.
inline uint16_t Combine16(Format16 format, ReduceOp op, uint16_t a, uint16_t b) {
  if (format.IsNan(a) || format.IsNan(b)) return format.canonical_nan();
  const float result = CombineReal<float>(op, static_cast<float>(Decode(format, a)),
                                          static_cast<float>(Decode(format, b)));
  return std::isnan(result) ? format.canonical_nan() : Encode(format, result);
}

// Integers: exact in 128 bits, then reduced modulo 2^bits.
template <class T>
T CombineInteger(ReduceOp op, T a, T b) {
  const __int128 x = a, y = b;
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg: return static_cast<T>(static_cast<unsigned __int128>(x + y));
    case ReduceOp::kProd:
      return static_cast<T>(static_cast<unsigned __int128>(x) * static_cast<unsigned __int128>(y));
    case ReduceOp::kMin: return std::min(a, b);
    case ReduceOp::kMax: return std::max(a, b);
  }
  return 0;
}

}  // namespace silk::kernels::testing
