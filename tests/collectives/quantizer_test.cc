// The WAN codes (collectives/compression/quantizer.h): error bounds per group,
// the edge cases the header defines (zeros, subnormals, Inf and NaN), decoding
// any run of groups, and error feedback's telescoping sum in one process.
#include "collectives/compression/quantizer.h"

#include <gtest/gtest.h>

#include "collectives/kernels/reduce.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace silk {
namespace {

std::vector<float> Values(size_t n, int seed = 0) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.7f * i + seed) * std::exp2(static_cast<float>((i + seed) % 9) - 4.0f);
  return x;
}

struct Case {
  Compression compression;
  size_t group;
};

class QuantizerTest : public ::testing::TestWithParam<Case> {
 protected:
  BlockQuantizer q() const { return BlockQuantizer(GetParam().compression, GetParam().group); }
  int qmax() const { return GetParam().compression == Compression::kInt4 ? 7 : 127; }
  bool topk() const { return GetParam().compression == Compression::kTopK; }
  bool blockwise() const { return GetParam().compression != Compression::kBf16; }
  // The values of x[i]'s group.
  std::vector<float> GroupOf(const std::vector<float>& x, size_t i) const {
    const size_t g = GetParam().group, begin = i / g * g, end = std::min(x.size(), begin + g);
    return std::vector<float>(x.begin() + begin, x.begin() + end);
  }
  float GroupAbsMax(const std::vector<float>& x, size_t i) const {
    float absmax = 0;
    for (float v : GroupOf(x, i)) absmax = std::max(absmax, std::fabs(v));
    return absmax;
  }
  double GroupNorm(const std::vector<float>& x, size_t i) const {
    double sum = 0;
    for (float v : GroupOf(x, i)) sum += static_cast<double>(v) * v;
    return std::sqrt(sum);
  }
  // The largest error the header promises for x[i] in a code of x (topk: a
  // value it drops is lost whole).
  float Bound(const std::vector<float>& x, size_t i) const {
    if (GetParam().compression == Compression::kBf16) return std::fabs(x[i]) * std::exp2(-8.0f);
    return 0.5f * GroupAbsMax(x, i) / qmax() * 1.0001f + 8 * std::numeric_limits<float>::denorm_min() +
           (topk() ? std::fabs(x[i]) : 0.0f);
  }
};

TEST_P(QuantizerTest, RoundTripIsWithinHalfAStepOfEachGroup) {
  for (size_t n : {size_t{1}, size_t{2}, size_t{255}, size_t{256}, size_t{1001}}) {
    const std::vector<float> x = Values(n);
    std::vector<uint8_t> code(q().EncodedBytes(n) + 8, 0xAB);
    q().Encode(x.data(), n, code.data());
    for (size_t i = q().EncodedBytes(n); i < code.size(); ++i) ASSERT_EQ(code[i], 0xAB) << "wrote past the end";
    std::vector<float> y(n);
    q().Decode(code.data(), n, y.data());
    for (size_t i = 0; i < n; ++i) ASSERT_LE(std::fabs(y[i] - x[i]), Bound(x, i)) << "n " << n << " element " << i;
  }
}

TEST_P(QuantizerTest, QuantizeLeavesWhatDecodeGivesAndAnyRunOfGroupsDecodesAlone) {
  const size_t n = 5 * GetParam().group + 37;
  std::vector<float> x = Values(n, 3), residual(n, 0.0f);
  std::vector<uint8_t> code(q().EncodedBytes(n));
  q().Quantize(x.data(), residual.data(), n, code.data());
  std::vector<float> y(n);
  q().Decode(code.data(), n, y.data());
  ASSERT_EQ(std::memcmp(x.data(), y.data(), n * sizeof(float)), 0);
  // Groups [2, 6) as a code of their own, values 10..(end-5) of them.
  const size_t g = GetParam().group, first = 2 * g, count = n - first;
  std::vector<float> part(count - 15);
  q().DecodeRange(code.data() + q().GroupOffset(2), count, 10, part.size(), part.data());
  ASSERT_EQ(std::memcmp(part.data(), y.data() + first + 10, part.size() * sizeof(float)), 0);
}

TEST_P(QuantizerTest, ZerosSubnormalsInfinitiesAndNaN) {
  const size_t g = GetParam().group, n = 4 * g;
  std::vector<float> x(n, 0.0f);
  for (size_t i = g; i < 2 * g; ++i) x[i] = std::numeric_limits<float>::denorm_min() * static_cast<float>(i % 50);
  for (size_t i = 2 * g; i < 4 * g; ++i) x[i] = 0.25f * std::sin(0.1f * i);
  x[2 * g + 5] = std::numeric_limits<float>::infinity();
  x[3 * g + 7] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> y = x, residual(n, 1e-30f);
  std::fill(residual.begin() + g, residual.end(), 0.0f);
  std::vector<uint8_t> code(q().EncodedBytes(n));
  q().Quantize(y.data(), residual.data(), n, code.data());
  for (size_t i = 0; i < g; ++i) {
    ASSERT_LE(std::fabs(y[i]), 1e-29f) << "zeros (plus a tiny carry) stay near zero";
  }
  for (size_t i = g; i < 2 * g; ++i) {
    // bf16 keeps 7 bits of a subnormal's mantissa too: its grid is 2^-133.
    ASSERT_LE(std::fabs(y[i] - x[i]),
              blockwise() ? std::fabs(x[i]) / (topk() ? 1 : 2) + 64 * FLT_TRUE_MIN : std::exp2(-134.0f))
        << "subnormal " << i;
    ASSERT_EQ(y[i] + residual[i], x[i]) << "what was lost is carried, element " << i;
  }
  for (size_t i = 2 * g; i < 4 * g; ++i) {
    if (blockwise() || !std::isfinite(x[i])) {
      ASSERT_EQ(residual[i], 0.0f) << "nothing carried from a non-finite group or value, element " << i;
    }
    if (blockwise()) {
      ASSERT_TRUE(std::isnan(y[i])) << "a group with Inf or NaN decodes to NaN, element " << i;
    } else if (i == 2 * g + 5) {
      ASSERT_EQ(y[i], std::numeric_limits<float>::infinity());
    } else if (i == 3 * g + 7) {
      ASSERT_TRUE(std::isnan(y[i]));
    }
  }
}

// Error feedback in one process: over T rounds of the same values, the sum of
// the decoded values misses the exact sum by exactly the carried error (up to
// float rounding), at most one round's error, where without it the miss grows.
TEST_P(QuantizerTest, ErrorFeedbackTelescopes) {
  const size_t n = 3 * GetParam().group + 11;
  const int rounds = 50;
  const std::vector<float> x = Values(n, 1);
  std::vector<float> residual(n, 0.0f);
  std::vector<double> with(n, 0.0), without(n, 0.0);
  std::vector<uint8_t> code(q().EncodedBytes(n));
  for (int t = 0; t < rounds; ++t) {
    std::vector<float> a = x, b = x;
    q().Quantize(a.data(), residual.data(), n, code.data());
    q().Quantize(b.data(), nullptr, n, code.data());
    for (size_t i = 0; i < n; ++i) {
      with[i] += a[i];
      without[i] += b[i];
    }
  }
  double worst_without = 0;
  for (size_t i = 0; i < n; ++i) {
    const double exact = static_cast<double>(x[i]) * rounds;
    ASSERT_NEAR(with[i] + residual[i], exact, 1e-5 * rounds * std::fabs(x[i]) + 1e-12) << "element " << i;
    // topk: a value waits until what it carries is among its group's largest.
    // Each call keeps at least k / g of the group's energy, so the carried
    // error's norm stays below (2 g / k) |x| (g values per group, k kept).
    const double carried = topk() ? 2.0 * BlockQuantizer::kTopKStride * GroupNorm(x, i) : 2 * Bound(x, i);
    ASSERT_LE(std::fabs(with[i] - exact), carried + 1e-5 * rounds * std::fabs(x[i])) << "element " << i;
    worst_without = std::max(worst_without, std::fabs(without[i] - exact) / (Bound(x, i) + 1e-30));
  }
  EXPECT_GT(worst_without, 5.0) << "without feedback the error should accumulate (else this test proves nothing)";
}

// The SIMD group loops (where the CPU has AVX2) give the scalar loops' bits:
// codes, values left decoded, residuals and decoded values, on groups with
// ties, clamped maxima, zeros, a subnormal scale, Inf and NaN, and a short last group.
TEST_P(QuantizerTest, SimdLoopsGiveTheScalarBits) {
  if (!kernels::IsKernelPathAvailable(kernels::KernelPath::kAvx2)) GTEST_SKIP() << "no AVX2 here";
  const size_t g = GetParam().group, n = 7 * g + 37;
  std::vector<float> x = Values(n, 3), residual0(n);
  for (size_t i = 0; i < n; ++i) residual0[i] = 1e-3f * std::cos(1.3f * i);
  for (size_t i = 0; i < g; ++i) x[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.5f;  // ties at qmax 7
  std::fill(x.begin() + g, x.begin() + 2 * g, 0.0f);
  for (size_t i = 2 * g; i < 3 * g; ++i) x[i] *= 1e-39f;  // a subnormal scale
  x[3 * g + 5] = std::numeric_limits<float>::infinity();
  x[4 * g + 9] = std::numeric_limits<float>::quiet_NaN();
  x[5 * g + 1] = -0.0f;
  struct Out {
    std::vector<float> x, residual, decoded;
    std::vector<uint8_t> code;
  };
  auto run = [&](kernels::KernelPath path, bool with_residual) {
    EXPECT_TRUE(kernels::SetKernelPathForTesting(path));
    Out o{x, residual0, std::vector<float>(n), std::vector<uint8_t>(q().EncodedBytes(n))};
    q().Quantize(o.x.data(), with_residual ? o.residual.data() : nullptr, n, o.code.data());
    q().Decode(o.code.data(), n, o.decoded.data());
    kernels::SetKernelPathForTesting(kernels::KernelPath::kAuto);
    return o;
  };
  auto bits = [](const std::vector<float>& v) {
    std::vector<uint32_t> b(v.size());
    std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
    return b;
  };
  for (bool with_residual : {true, false}) {
    const Out scalar = run(kernels::KernelPath::kScalar, with_residual), simd = run(kernels::KernelPath::kAvx2, with_residual);
    EXPECT_EQ(simd.code, scalar.code);
    EXPECT_EQ(bits(simd.x), bits(scalar.x));
    EXPECT_EQ(bits(simd.residual), bits(scalar.residual));
    EXPECT_EQ(bits(simd.decoded), bits(scalar.decoded));
    EXPECT_EQ(bits(simd.decoded), bits(simd.x));
  }
}

INSTANTIATE_TEST_SUITE_P(Codes, QuantizerTest,
                         ::testing::Values(Case{Compression::kBf16, 128}, Case{Compression::kInt8, 128},
                                           Case{Compression::kInt4, 128}, Case{Compression::kInt8, 256},
                                           Case{Compression::kInt4, 256}, Case{Compression::kTopK, 128},
                                           Case{Compression::kTopK, 256}),
                         [](const auto& info) {
                           return std::string(CompressionName(info.param.compression)) + "_group" +
                                  std::to_string(info.param.group);
                         });

TEST(Quantizer, SizesAndNames) {
  EXPECT_EQ(BlockQuantizer(Compression::kInt4, 256).EncodedBytes(512), 2u * (4 + 128));
  EXPECT_EQ(BlockQuantizer(Compression::kInt4, 256).EncodedBytes(257), 4u + 128 + 4 + 1);
  EXPECT_EQ(BlockQuantizer(Compression::kInt8, 256).EncodedBytes(300), 4u + 256 + 4 + 44);
  EXPECT_EQ(BlockQuantizer(Compression::kBf16, 256).EncodedBytes(300), 600u);
  EXPECT_EQ(BlockQuantizer(Compression::kNone, 256).EncodedBytes(300), 1200u);
  EXPECT_DOUBLE_EQ(BlockQuantizer(Compression::kInt4, 256).BitsPerValue(), 4.125);
  EXPECT_EQ(BlockQuantizer(Compression::kTopK, 256).EncodedBytes(300), 4u + 2 * 8 + 4 + 2 * 2);
  EXPECT_DOUBLE_EQ(BlockQuantizer(Compression::kTopK, 256).BitsPerValue(), 0.625);
  for (Compression c :
       {Compression::kNone, Compression::kBf16, Compression::kInt8, Compression::kInt4, Compression::kTopK}) {
    auto parsed = ParseCompression(CompressionName(c));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_FALSE(ParseCompression("fp8").ok());
}

// topk keeps, in each group, exactly its k = ceil(n / 32) values of largest
// magnitude (ties: the earlier ones), each within half a step; the rest are 0.
TEST(Quantizer, TopKKeepsTheLargestOfEachGroup) {
  const BlockQuantizer q(Compression::kTopK, 256);
  const size_t n = 3 * 256 + 40;  // a short last group keeps 2
  std::vector<float> x = Values(n, 5);
  std::fill(x.begin() + 256, x.begin() + 512, -0.5f);  // all tied: the first 8 are kept
  std::vector<uint8_t> code(q.EncodedBytes(n));
  q.Encode(x.data(), n, code.data());
  std::vector<float> y(n);
  q.Decode(code.data(), n, y.data());
  for (size_t begin = 0; begin < n; begin += 256) {
    const size_t end = std::min(n, begin + 256), k = (end - begin + 31) / 32;
    std::vector<size_t> order;
    for (size_t i = begin; i < end; ++i) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return std::fabs(x[a]) > std::fabs(x[b]); });
    float absmax = std::fabs(x[order[0]]);
    for (size_t r = 0; r < order.size(); ++r) {
      const size_t i = order[r];
      if (r < k) {
        ASSERT_LE(std::fabs(y[i] - x[i]), absmax / 127 / 2 * 1.0001f) << "kept element " << i;
      } else {
        ASSERT_EQ(y[i], 0.0f) << "dropped element " << i;
      }
    }
  }
}

// A code whose index points past a short group's end (only a damaged one can)
// writes nothing outside the values decoded.
TEST(Quantizer, TopKIndexPastAShortGroupWritesNothing) {
  const BlockQuantizer q(Compression::kTopK, 256);
  const size_t n = 10;  // one value kept
  std::vector<uint8_t> code(q.EncodedBytes(n));
  ASSERT_EQ(code.size(), 6u);
  const float scale = 1.0f;
  std::memcpy(code.data(), &scale, sizeof(scale));
  code[4] = 200;  // index
  code[5] = 3;    // code
  std::vector<float> y(n, 7.0f);
  q.Decode(code.data(), n, y.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace silk
