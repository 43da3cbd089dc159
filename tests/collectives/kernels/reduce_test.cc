// Reduce / ReduceInto on every path x type x op, at awkward counts and
// misalignments, against the independent reference in reference.h.
#include "collectives/kernels/reduce.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "tests/collectives/kernels/kernel_paths.h"
#include "tests/collectives/kernels/test_buffers.h"

namespace silk::kernels::testing {
namespace {

constexpr size_t kCounts[] = {0, 1, 7, 15, 16, 17, 1000, 100003};

// Byte offsets past a 64-byte boundary for (dst, a, b).
struct Offsets {
  size_t dst, a, b;
};
constexpr Offsets kOffsets[] = {{0, 0, 0}, {1, 2, 3}, {63, 31, 17}, {4, 36, 60}, {33, 1, 62}};
constexpr Offsets kOffsetsForLargeCounts[] = {{0, 0, 0}, {63, 31, 17}};

class ReduceTest : public ::testing::TestWithParam<std::tuple<KernelPath, DataType>> {
 protected:
  KernelPath path() const { return std::get<0>(GetParam()); }
  DataType type() const { return std::get<1>(GetParam()); }
  size_t width() const { return DataTypeSize(type()); }
};

std::string Describe(ReduceOp op, size_t count, Offsets offsets) {
  return std::string(ReduceOpName(op)) + " count=" + std::to_string(count) + " offsets dst/a/b=" +
         std::to_string(offsets.dst) + "/" + std::to_string(offsets.a) + "/" + std::to_string(offsets.b);
}

TEST_P(ReduceTest, SeparateDestinationMatchesReference) {
  SILK_USE_KERNEL_PATH_OR_SKIP(path());
  std::mt19937_64 rng(1);
  for (ReduceOp op : kAllOps) {
    for (size_t count : kCounts) {
      const auto a_values = RandomValues(type(), count, rng);
      const auto b_values = RandomValues(type(), count, rng);
      const auto expected = ReferenceReduce(type(), op, a_values, b_values, count);
      for (Offsets offsets : count > 1000 ? std::span<const Offsets>(kOffsetsForLargeCounts)
                                          : std::span<const Offsets>(kOffsets)) {
        SCOPED_TRACE(Describe(op, count, offsets));
        GuardedBuffer dst(count * width(), offsets.dst), a(count * width(), offsets.a),
            b(count * width(), offsets.b);
        a.Fill(a_values);
        b.Fill(b_values);
        Reduce(type(), op, dst.data(), a.data(), b.data(), count);
        EXPECT_TRUE(SameElements(type(), expected, dst.Contents()));
        EXPECT_TRUE(dst.GuardsIntact());
        EXPECT_EQ(a.Contents(), a_values) << "an input was modified";
        EXPECT_EQ(b.Contents(), b_values) << "an input was modified";
      }
    }
  }
}

TEST_P(ReduceTest, ReduceIntoMatchesReference) {
  SILK_USE_KERNEL_PATH_OR_SKIP(path());
  std::mt19937_64 rng(2);
  for (ReduceOp op : kAllOps) {
    for (size_t count : kCounts) {
      const auto dst_values = RandomValues(type(), count, rng);
      const auto src_values = RandomValues(type(), count, rng);
      const auto expected = ReferenceReduce(type(), op, dst_values, src_values, count);
      for (Offsets offsets : count > 1000 ? std::span<const Offsets>(kOffsetsForLargeCounts)
                                          : std::span<const Offsets>(kOffsets)) {
        SCOPED_TRACE(Describe(op, count, offsets));
        GuardedBuffer dst(count * width(), offsets.dst), src(count * width(), offsets.b);
        dst.Fill(dst_values);
        src.Fill(src_values);
        ReduceInto(type(), op, dst.data(), src.data(), count);
        EXPECT_TRUE(SameElements(type(), expected, dst.Contents()));
        EXPECT_TRUE(dst.GuardsIntact());
        EXPECT_EQ(src.Contents(), src_values) << "the source was modified";
      }
    }
  }
}

TEST_P(ReduceTest, DestinationMayBeEitherInputOrBoth) {
  SILK_USE_KERNEL_PATH_OR_SKIP(path());
  std::mt19937_64 rng(3);
  for (ReduceOp op : kAllOps) {
    for (size_t count : {size_t{33}, size_t{100003}}) {
      SCOPED_TRACE(std::string(ReduceOpName(op)) + " count=" + std::to_string(count));
      const auto x_values = RandomValues(type(), count, rng);
      const auto y_values = RandomValues(type(), count, rng);
      GuardedBuffer x(count * width(), 5), y(count * width(), 9);

      x.Fill(x_values);
      y.Fill(y_values);
      Reduce(type(), op, x.data(), x.data(), y.data(), count);  // dst is a
      EXPECT_TRUE(SameElements(type(), ReferenceReduce(type(), op, x_values, y_values, count), x.Contents()));

      x.Fill(x_values);
      Reduce(type(), op, y.data(), x.data(), y.data(), count);  // dst is b
      EXPECT_TRUE(SameElements(type(), ReferenceReduce(type(), op, x_values, y_values, count), y.Contents()));

      x.Fill(x_values);
      Reduce(type(), op, x.data(), x.data(), x.data(), count);  // all three
      EXPECT_TRUE(SameElements(type(), ReferenceReduce(type(), op, x_values, x_values, count), x.Contents()));
      EXPECT_TRUE(x.GuardsIntact());
      EXPECT_TRUE(y.GuardsIntact());
    }
  }
}

// Floating-point results of 8 MiB and more with a separate dst take the
// non-temporal store loop (with its alignment head). Too big for the slow
// reference: compare with the scalar path, which ReduceTest holds to it.
class StreamingReduceTest : public ReduceTest {};

TEST_P(StreamingReduceTest, LargeSeparateDestinationMatchesScalarPath) {
  if (!IsKernelPathAvailable(path())) GTEST_SKIP() << "this CPU cannot run " << KernelPathName(path());
  std::mt19937_64 rng(4);
  const size_t count = (size_t{8} << 20) / width() + 13;
  const auto a_values = RandomValues(type(), count, rng);
  const auto b_values = RandomValues(type(), count, rng);
  // One op is enough: streaming changes only how results are stored.
  std::vector<std::byte> expected(count * width());
  {
    ScopedKernelPath scalar(KernelPath::kScalar);
    Reduce(type(), ReduceOp::kSum, expected.data(), a_values.data(), b_values.data(), count);
  }
  ScopedKernelPath forced(path());
  // dst offsets: cache-line aligned, element aligned only, not even element aligned.
  for (size_t dst_offset : {size_t{0}, width(), size_t{1}}) {
    SCOPED_TRACE("dst offset " + std::to_string(dst_offset));
    GuardedBuffer dst(count * width(), dst_offset);
    Reduce(type(), ReduceOp::kSum, dst.data(), a_values.data(), b_values.data(), count);
    EXPECT_TRUE(SameElements(type(), expected, dst.Contents()));
    EXPECT_TRUE(dst.GuardsIntact());
  }
}

std::string PathAndTypeName(const ::testing::TestParamInfo<std::tuple<KernelPath, DataType>>& info) {
  return std::string(KernelPathName(std::get<0>(info.param))) + "_" + DataTypeName(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllPathsAndTypes, ReduceTest,
                         ::testing::Combine(::testing::ValuesIn(kAllPaths), ::testing::ValuesIn(kAllTypes)),
                         PathAndTypeName);
INSTANTIATE_TEST_SUITE_P(SimdPathsAndFloatTypes, StreamingReduceTest,
                         ::testing::Combine(::testing::Values(KernelPath::kAvx2, KernelPath::kAvx512),
                                            ::testing::Values(DataType::kFloat32, DataType::kFloat64,
                                                              DataType::kFloat16, DataType::kBFloat16)),
                         PathAndTypeName);

TEST(ReduceSemanticsTest, ExamplesFromTheHeader) {
  // A few facts from reduce.h, spelled out (the exhaustive checks are above).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float values[] = {-0.0f, 0.0f, nan, 1.0f};
  float others[] = {0.0f, -0.0f, 2.0f, -std::numeric_limits<float>::signaling_NaN()};
  float result[4];
  Reduce(DataType::kFloat32, ReduceOp::kMin, result, values, others, 4);
  EXPECT_TRUE(std::signbit(result[0]) && result[0] == 0);
  EXPECT_TRUE(std::signbit(result[1]) && result[1] == 0);
  EXPECT_EQ(std::bit_cast<uint32_t>(result[2]), 0x7FC00000u);
  EXPECT_EQ(std::bit_cast<uint32_t>(result[3]), 0x7FC00000u) << "NaN payload and sign are canonical";
  Reduce(DataType::kFloat32, ReduceOp::kMax, result, values, others, 2);
  EXPECT_TRUE(!std::signbit(result[0]) && !std::signbit(result[1]));

  int8_t wrap[] = {127, -128};
  const int8_t one[] = {1, -1};
  ReduceInto(DataType::kInt8, ReduceOp::kSum, wrap, one, 2);
  EXPECT_EQ(wrap[0], -128);
  EXPECT_EQ(wrap[1], 127);

  int32_t avg[] = {3, -7};
  const int32_t more[] = {4, 0};
  ReduceInto(DataType::kInt32, ReduceOp::kAvg, avg, more, 2);  // kAvg sums...
  EXPECT_EQ(avg[0], 7);
  Scale(DataType::kInt32, avg, 2, 2);  // ...and Scale divides, toward zero
  EXPECT_EQ(avg[0], 3);
  EXPECT_EQ(avg[1], -3);
}

TEST(KernelPathTest, AutoPicksAnAvailablePath) {
  ASSERT_TRUE(SetKernelPathForTesting(KernelPath::kAuto));
  const KernelPath active = ActiveKernelPath();
  EXPECT_NE(active, KernelPath::kAuto);
  EXPECT_TRUE(IsKernelPathAvailable(active));
  EXPECT_TRUE(IsKernelPathAvailable(KernelPath::kScalar));
  // Widest first: AVX-512 when present, then AVX2.
  if (IsKernelPathAvailable(KernelPath::kAvx512)) {
    EXPECT_EQ(active, KernelPath::kAvx512);
  }
  ASSERT_TRUE(SetKernelPathForTesting(KernelPath::kScalar));
  EXPECT_EQ(ActiveKernelPath(), KernelPath::kScalar);
  SetKernelPathForTesting(KernelPath::kAuto);
  EXPECT_EQ(ActiveKernelPath(), active);
}

TEST(ReduceDeathTest, RejectsInvalidArguments) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  float x[1] = {1.0f};
  EXPECT_DEATH(Reduce(static_cast<DataType>(42), ReduceOp::kSum, x, x, x, 1), "invalid DataType");
  EXPECT_DEATH(ReduceInto(DataType::kFloat32, static_cast<ReduceOp>(9), x, x, 1), "invalid ReduceOp");
  EXPECT_DEATH(Scale(DataType::kFloat32, x, 1, 0), "invalid divisor");
  EXPECT_DEATH(ConvertToFloat(DataType::kInt32, x, x, 1), "invalid DataType for float widening");
}

}  // namespace
}  // namespace silk::kernels::testing
