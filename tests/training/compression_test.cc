// The pseudo-gradient codes: sizes, rounding error bounds, determinism, and
// the edge cases (zeros, a short last group, odd counts, extremes).
#include "training/compression.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace silk::training {
namespace {

std::vector<float> Values(size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.7f * i) * std::exp2(static_cast<float>(i % 9) - 4.0f);
  return x;
}

class CodeTest : public ::testing::TestWithParam<Compression> {};

TEST_P(CodeTest, EncodedSizeIsWhatEncodeWrites) {
  const BlockQuantizer q(GetParam());
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{127}, size_t{128}, size_t{129}, size_t{1001}}) {
    const std::vector<float> x = Values(n);
    std::vector<uint8_t> code(q.EncodedBytes(n) + 16, 0xAB);
    q.Encode(x.data(), n, code.data());
    for (size_t i = q.EncodedBytes(n); i < code.size(); ++i) ASSERT_EQ(code[i], 0xAB) << "wrote past the end, n " << n;
  }
  if (GetParam() == Compression::kInt4) {
    EXPECT_EQ(q.EncodedBytes(256), 2u * (4 + 64));
    EXPECT_EQ(q.EncodedBytes(131), 2u * 4 + 64 + 2);
  } else {
    EXPECT_EQ(q.EncodedBytes(129), 2u * 4 + 129);
  }
}

TEST_P(CodeTest, RoundTripErrorIsAtMostHalfAStepOfItsGroup) {
  const BlockQuantizer q(GetParam());
  const int qmax = GetParam() == Compression::kInt8 ? 127 : 7;
  const size_t n = 1001;
  const std::vector<float> x = Values(n);
  std::vector<uint8_t> code(q.EncodedBytes(n));
  q.Encode(x.data(), n, code.data());
  std::vector<float> y(n);
  q.Decode(code.data(), n, y.data());
  for (size_t begin = 0; begin < n; begin += BlockQuantizer::kGroup) {
    const size_t end = std::min(n, begin + BlockQuantizer::kGroup);
    float absmax = 0;
    for (size_t i = begin; i < end; ++i) absmax = std::max(absmax, std::fabs(x[i]));
    const float step = absmax / qmax;
    for (size_t i = begin; i < end; ++i) {
      ASSERT_LE(std::fabs(y[i] - x[i]), 0.5f * step * 1.0001f) << "element " << i;
    }
  }
}

TEST_P(CodeTest, SameValuesGiveTheSameBytesAndFloats) {
  const BlockQuantizer q(GetParam());
  const std::vector<float> x = Values(777);
  std::vector<uint8_t> a(q.EncodedBytes(x.size())), b(a.size());
  q.Encode(x.data(), x.size(), a.data());
  q.Encode(x.data(), x.size(), b.data());
  EXPECT_EQ(a, b);
  std::vector<float> ya(x.size()), yb(x.size());
  q.Decode(a.data(), x.size(), ya.data());
  q.Decode(b.data(), x.size(), yb.data());
  EXPECT_EQ(0, std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)));
}

TEST_P(CodeTest, ZerosAndExtremesSurvive) {
  const BlockQuantizer q(GetParam());
  std::vector<float> x(300, 0.0f);
  x[200] = -3.5f;  // the group's absmax: exact at the extreme code
  x[201] = 3.5f;
  std::vector<uint8_t> code(q.EncodedBytes(x.size()));
  q.Encode(x.data(), x.size(), code.data());
  std::vector<float> y(x.size(), 1.0f);
  q.Decode(code.data(), x.size(), y.data());
  for (size_t i = 0; i < 128; ++i) EXPECT_EQ(y[i], 0.0f) << i;  // an all-zero group
  EXPECT_EQ(y[200], -3.5f);
  EXPECT_EQ(y[201], 3.5f);
}

INSTANTIATE_TEST_SUITE_P(Codes, CodeTest, ::testing::Values(Compression::kInt8, Compression::kInt4),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

TEST(Compression, NoneIsTheFloatsThemselves) {
  const BlockQuantizer q(Compression::kNone);
  const std::vector<float> x = Values(33);
  EXPECT_EQ(q.EncodedBytes(33), 33 * sizeof(float));
  std::vector<uint8_t> code(q.EncodedBytes(33));
  q.Encode(x.data(), 33, code.data());
  std::vector<float> y(33);
  q.Decode(code.data(), 33, y.data());
  EXPECT_EQ(x, y);
}

TEST(Compression, NamesRoundTrip) {
  for (Compression c : {Compression::kNone, Compression::kInt8, Compression::kInt4}) {
    auto parsed = ParseCompression(CompressionName(c));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_FALSE(ParseCompression("fp4").ok());
}

}  // namespace
}  // namespace silk::training
