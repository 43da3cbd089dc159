// 16-bit floating-point value types: IEEE 754 binary16 ("half", Float16) and
// bfloat16 (the top half of a float32, BFloat16). Both are plain storage
// (uint16_t) with exact, portable conversions to and from float; arithmetic is
// done in float32 by the caller (see kernels/reduce.h).
//
// Conversions:
//  - to float is exact for every bit pattern;
//  - from float rounds to nearest, ties to even, overflowing to +-inf;
//  - float16 keeps subnormals (no flush to zero);
//  - NaN stays NaN with its sign and (the top bits of) its payload. Narrowing
//    sets the quiet bit; so does widening float16, as x86's F16C instructions
//    do, while widening bfloat16 is a plain shift that keeps every bit.
// For arrays, kernels::ConvertToFloat/ConvertFromFloat give the same results
// faster (F16C/AVX-512 where the CPU has them).
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace silk {

constexpr float Float16BitsToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0x1F) {  // inf, or NaN made quiet
    const uint32_t quiet = mantissa != 0 ? 0x00400000u : 0u;
    return std::bit_cast<float>(sign | 0x7F800000u | quiet | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return std::bit_cast<float>(sign);
    // Subnormal half: a normal float once the leading one is shifted into place.
    int32_t float_exponent = 127 - 14;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --float_exponent;
    }
    mantissa &= 0x3FFu;
    return std::bit_cast<float>(sign | (static_cast<uint32_t>(float_exponent) << 23) |
                                (mantissa << 13));
  }
  return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

constexpr uint16_t FloatToFloat16Bits(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) {  // NaN: keep the payload's top bits, set quiet
    return static_cast<uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
  }
  // 65520 is halfway between the largest half (65504) and 2^16; the tie goes to
  // the even neighbour, which is infinity.
  if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
  if (magnitude < 0x38800000u) {  // below 2^-14: a subnormal half (or zero)
    if (magnitude <= 0x33000000u) return sign;  // at most 2^-25, half of the smallest subnormal
    const uint32_t exponent = magnitude >> 23;
    const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
    // The value in units of 2^-24 is significand >> shift.
    const uint32_t shift = 126 - exponent;
    uint32_t result = significand >> shift;
    const uint32_t remainder = significand & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (result & 1u) != 0)) ++result;
    return static_cast<uint16_t>(sign | result);
  }
  // Normal: rebias the exponent (127 -> 15) and round away 13 mantissa bits. A
  // carry out of the mantissa correctly bumps the exponent.
  uint32_t result = (magnitude >> 13) - ((127u - 15u) << 10);
  const uint32_t remainder = magnitude & 0x1FFFu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u) != 0)) ++result;
  return static_cast<uint16_t>(sign | result);
}

constexpr float BFloat16BitsToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

constexpr uint16_t FloatToBFloat16Bits(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {  // NaN: truncate and set quiet so it stays NaN
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  // Round to nearest even: add just under half an ulp, plus one if the kept
  // part is odd. Overflow carries into the exponent and ends at infinity.
  const uint32_t round_bias = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + round_bias) >> 16);
}

class Float16 {
 public:
  constexpr Float16() = default;
  constexpr explicit Float16(float value) : bits_(FloatToFloat16Bits(value)) {}
  static constexpr Float16 FromBits(uint16_t bits) {
    Float16 result;
    result.bits_ = bits;
    return result;
  }

  constexpr uint16_t bits() const { return bits_; }
  constexpr float ToFloat() const { return Float16BitsToFloat(bits_); }
  constexpr explicit operator float() const { return ToFloat(); }

 private:
  uint16_t bits_ = 0;
};

class BFloat16 {
 public:
  constexpr BFloat16() = default;
  constexpr explicit BFloat16(float value) : bits_(FloatToBFloat16Bits(value)) {}
  static constexpr BFloat16 FromBits(uint16_t bits) {
    BFloat16 result;
    result.bits_ = bits;
    return result;
  }

  constexpr uint16_t bits() const { return bits_; }
  constexpr float ToFloat() const { return BFloat16BitsToFloat(bits_); }
  constexpr explicit operator float() const { return ToFloat(); }

 private:
  uint16_t bits_ = 0;
};

static_assert(sizeof(Float16) == 2 && sizeof(BFloat16) == 2);
static_assert(std::is_trivially_copyable_v<Float16> && std::is_trivially_copyable_v<BFloat16>);

}  // namespace silk
