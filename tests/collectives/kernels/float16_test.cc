// Float16 / BFloat16 scalar conversions: exhaustive over the 16-bit patterns,
// rounding at and around every tie, and the special values.
#include "collectives/kernels/float16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "tests/collectives/kernels/reference.h"

namespace silk::kernels::testing {
namespace {

static_assert(Float16(1.0f).bits() == 0x3C00, "conversions are usable in constant expressions");
static_assert(BFloat16(1.0f).bits() == 0x3F80);
static_assert(Float16::FromBits(0xC000).ToFloat() == -2.0f);

uint32_t Bits(float value) { return std::bit_cast<uint32_t>(value); }
float FromBits(uint32_t bits) { return std::bit_cast<float>(bits); }

template <class T>
Format16 FormatOf() {
  return std::is_same_v<T, Float16> ? kHalf : kBrain;
}

template <class T>
class Float16Test : public ::testing::Test {};
using SixteenBitTypes = ::testing::Types<Float16, BFloat16>;
class TypeNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, Float16> ? "Float16" : "BFloat16";
  }
};
TYPED_TEST_SUITE(Float16Test, SixteenBitTypes, TypeNames);

TYPED_TEST(Float16Test, EveryPatternWidensExactlyAndNarrowsBack) {
  const Format16 format = FormatOf<TypeParam>();
  for (uint32_t pattern = 0; pattern <= 0xFFFF; ++pattern) {
    const uint16_t bits = static_cast<uint16_t>(pattern);
    const float widened = TypeParam::FromBits(bits).ToFloat();
    ASSERT_EQ(Bits(widened), WidenBits(format, bits)) << std::hex << "pattern 0x" << pattern;
    const uint16_t back = TypeParam(widened).bits();
    if (format.IsNan(bits)) {
      // NaN stays NaN, quiet, with its sign and payload.
      ASSERT_EQ(back, bits | format.quiet_bit()) << std::hex << "pattern 0x" << pattern;
    } else {
      ASSERT_EQ(back, bits) << std::hex << "pattern 0x" << pattern;
    }
  }
}

// For each pair of neighbours (lo, hi) of the 16-bit format, the float exactly
// halfway between goes to the one with an even mantissa, and the floats one
// ulp either side go to the nearer one.
TYPED_TEST(Float16Test, RoundsToNearestWithTiesToEven) {
  const Format16 format = FormatOf<TypeParam>();
  const uint16_t infinity = static_cast<uint16_t>(format.max_field() << format.mantissa_bits);
  for (uint16_t sign : {uint16_t{0}, uint16_t{0x8000}}) {
    for (uint16_t magnitude = 0; magnitude < infinity; ++magnitude) {
      const uint16_t lo = sign | magnitude;
      const uint16_t hi = static_cast<uint16_t>(lo + 1);  // next away from zero, maybe infinity
      const double lo_value = Decode(format, lo);
      // Past the largest finite value, rounding switches to infinity where
      // the next value would be if the exponent went on.
      const double hi_value = hi == (sign | infinity)
                                  ? 2 * lo_value - Decode(format, static_cast<uint16_t>(lo - 1))
                                  : Decode(format, hi);
      const float tie = static_cast<float>((lo_value + hi_value) / 2);
      ASSERT_EQ(static_cast<double>(tie), (lo_value + hi_value) / 2) << "midpoints are floats";
      const uint16_t even = (lo & 1) == 0 ? lo : hi;
      ASSERT_EQ(TypeParam(tie).bits(), even) << std::hex << "tie above 0x" << lo;
      const float below = std::nextafter(tie, 0.0f);
      const float above = std::nextafter(tie, sign != 0 ? -INFINITY : INFINITY);
      ASSERT_EQ(TypeParam(below).bits(), lo) << std::hex << "just inside the tie above 0x" << lo;
      ASSERT_EQ(TypeParam(above).bits(), hi) << std::hex << "just outside the tie above 0x" << lo;
    }
  }
}

TYPED_TEST(Float16Test, SampledFloatsMatchTheReference) {
  const Format16 format = FormatOf<TypeParam>();
  // A stride prime to 2^32 visits every exponent and many mantissas.
  constexpr uint64_t kStride = 4099;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += kStride) {
    const float value = FromBits(static_cast<uint32_t>(bits));
    ASSERT_EQ(TypeParam(value).bits(), NarrowBits(format, value)) << std::hex << "float bits 0x" << bits;
  }
}

TEST(Float16SpecialsTest, HalfBoundaries) {
  EXPECT_EQ(Float16(65504.0f).bits(), 0x7BFF);                       // largest finite
  EXPECT_EQ(Float16(std::nextafter(65520.0f, 0.0f)).bits(), 0x7BFF);  // just below the overflow tie
  EXPECT_EQ(Float16(65520.0f).bits(), 0x7C00);                       // the tie rounds to even: infinity
  EXPECT_EQ(Float16(std::numeric_limits<float>::max()).bits(), 0x7C00);
  EXPECT_EQ(Float16(-INFINITY).bits(), 0xFC00);
  EXPECT_EQ(Float16(std::ldexp(1.0f, -14)).bits(), 0x0400);         // smallest normal
  EXPECT_EQ(Float16(std::ldexp(1.0f, -24)).bits(), 0x0001);         // smallest subnormal
  EXPECT_EQ(Float16(std::ldexp(1.0f, -25)).bits(), 0x0000);         // tie between 0 and 2^-24: even is 0
  EXPECT_EQ(Float16(std::ldexp(1.5f, -25)).bits(), 0x0001);
  EXPECT_EQ(Float16(std::ldexp(3.0f, -25)).bits(), 0x0002);         // tie between 1 and 2 subnormal steps
  EXPECT_EQ(Float16(-std::ldexp(1.0f, -30)).bits(), 0x8000);        // underflow keeps the sign
  EXPECT_EQ(Float16(std::numeric_limits<float>::denorm_min()).bits(), 0x0000);
  EXPECT_EQ(Float16::FromBits(0x0001).ToFloat(), std::ldexp(1.0f, -24));
  EXPECT_EQ(Float16::FromBits(0x03FF).ToFloat(), std::ldexp(1023.0f, -24));
}

TEST(Float16SpecialsTest, NanStaysNan) {
  EXPECT_EQ(Float16(FromBits(0x7FC00000)).bits(), 0x7E00);
  EXPECT_EQ(Float16(FromBits(0x7F800001)).bits(), 0x7E00) << "a payload lost to rounding still leaves a NaN";
  EXPECT_EQ(Float16(FromBits(0xFF802000)).bits(), 0xFE01) << "sign and top payload bits survive";
  EXPECT_EQ(Bits(Float16::FromBits(0x7C01).ToFloat()), 0x7FC02000u) << "signalling NaN comes back quiet";
  EXPECT_EQ(BFloat16(FromBits(0x7F800001)).bits(), 0x7FC0) << "truncation alone would give infinity";
  EXPECT_EQ(BFloat16(FromBits(0xFFA50000)).bits(), 0xFFE5);
  EXPECT_EQ(Bits(BFloat16::FromBits(0x7F81).ToFloat()), 0x7F810000u) << "widening bfloat16 is exact";
}

TEST(Float16SpecialsTest, BFloat16Boundaries) {
  EXPECT_EQ(BFloat16(std::numeric_limits<float>::max()).bits(), 0x7F80);  // rounds up to infinity
  EXPECT_EQ(BFloat16(FromBits(0x7F7F7FFF)).bits(), 0x7F7F);
  EXPECT_EQ(BFloat16(FromBits(0x7F7F8000)).bits(), 0x7F80);               // tie to even: infinity
  EXPECT_EQ(BFloat16(FromBits(0x3F808000)).bits(), 0x3F80);               // tie, even stays
  EXPECT_EQ(BFloat16(FromBits(0x3F818000)).bits(), 0x3F82);               // tie, odd rounds up
  EXPECT_EQ(BFloat16(std::numeric_limits<float>::denorm_min()).bits(), 0x0000);
  EXPECT_EQ(BFloat16(FromBits(0x00018000)).bits(), 0x0002);               // subnormals round too
  EXPECT_EQ(BFloat16(-0.0f).bits(), 0x8000);
}

}  // namespace
}  // namespace silk::kernels::testing
