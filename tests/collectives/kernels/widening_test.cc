// The float32 widening helpers (ConvertToFloat, AccumulateToFloat,
// ConvertFromFloat) and Scale, on every kernel path, against reference.h.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "collectives/kernels/reduce.h"
#include "tests/collectives/kernels/kernel_paths.h"
#include "tests/collectives/kernels/test_buffers.h"

namespace silk::kernels::testing {
namespace {

class WideningTest : public ::testing::TestWithParam<KernelPath> {};

constexpr DataType kSixteenBitTypes[] = {DataType::kFloat16, DataType::kBFloat16};

Format16 FormatOf(DataType type) { return type == DataType::kFloat16 ? kHalf : kBrain; }

// The bytes of `values`, for GuardedBuffer::Fill.
template <class T>
std::vector<std::byte> AsBytes(const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

TEST_P(WideningTest, ConvertToFloatIsExactForEveryPattern) {
  SILK_USE_KERNEL_PATH_OR_SKIP(GetParam());
  std::vector<uint16_t> patterns(65536);
  for (uint32_t i = 0; i < patterns.size(); ++i) patterns[i] = static_cast<uint16_t>(i);
  for (DataType type : kSixteenBitTypes) {
    std::vector<std::byte> expected(patterns.size() * 4);
    for (size_t i = 0; i < patterns.size(); ++i) Put(expected, i, WidenBits(FormatOf(type), patterns[i]));
    for (size_t src_offset : {0, 1, 34}) {
      SCOPED_TRACE(std::string(DataTypeName(type)) + " src offset " + std::to_string(src_offset));
      GuardedBuffer src(patterns.size() * 2, src_offset), dst(patterns.size() * 4, 0);
      src.Fill(AsBytes(patterns));
      ConvertToFloat(type, reinterpret_cast<float*>(dst.data()), src.data(), patterns.size());
      EXPECT_TRUE(SameElements(DataType::kFloat32, expected, dst.Contents()));
      EXPECT_TRUE(dst.GuardsIntact());
    }
  }
}

// A sample of all floats (every exponent, many mantissas, NaN payloads) plus
// the floats at and one ulp around every tie of the 16-bit format.
std::vector<float> FloatsToNarrow(Format16 format) {
  std::vector<float> values;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += 65537 * 3) {
    values.push_back(std::bit_cast<float>(static_cast<uint32_t>(bits)));
  }
  const uint16_t infinity = static_cast<uint16_t>(format.max_field() << format.mantissa_bits);
  for (uint16_t magnitude = 1; magnitude < infinity; ++magnitude) {
    const float tie = static_cast<float>((Decode(format, magnitude) + Decode(format, magnitude - 1)) / 2);
    for (float value : {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, INFINITY)}) {
      values.push_back(value);
      values.push_back(-value);
    }
  }
  return values;
}

TEST_P(WideningTest, ConvertFromFloatRoundsToNearestEven) {
  SILK_USE_KERNEL_PATH_OR_SKIP(GetParam());
  for (DataType type : kSixteenBitTypes) {
    const std::vector<float> values = FloatsToNarrow(FormatOf(type));
    std::vector<std::byte> expected(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) Put(expected, i, NarrowBits(FormatOf(type), values[i]));
    for (size_t dst_offset : {0, 3}) {
      SCOPED_TRACE(std::string(DataTypeName(type)) + " dst offset " + std::to_string(dst_offset));
      GuardedBuffer dst(values.size() * 2, dst_offset);
      ConvertFromFloat(type, dst.data(), values.data(), values.size());
      EXPECT_TRUE(SameElements(type, expected, dst.Contents()));
      EXPECT_TRUE(dst.GuardsIntact());
    }
  }
}

TEST_P(WideningTest, Float32IsAPlainCopy) {
  SILK_USE_KERNEL_PATH_OR_SKIP(GetParam());
  std::mt19937_64 rng(5);
  const auto values = RandomValues(DataType::kFloat32, 1001, rng);
  GuardedBuffer there(values.size(), 1), back(values.size(), 2);
  ConvertToFloat(DataType::kFloat32, reinterpret_cast<float*>(there.data()), values.data(), 1001);
  ConvertFromFloat(DataType::kFloat32, back.data(), reinterpret_cast<const float*>(there.data()), 1001);
  EXPECT_EQ(back.Contents(), values);
}

TEST_P(WideningTest, AccumulateToFloatMatchesReference) {
  SILK_USE_KERNEL_PATH_OR_SKIP(GetParam());
  std::mt19937_64 rng(6);
  for (DataType type : {DataType::kFloat16, DataType::kBFloat16, DataType::kFloat32}) {
    for (ReduceOp op : kAllOps) {
      for (size_t count : {0, 1, 17, 1000, 100003}) {
        SCOPED_TRACE(std::string(DataTypeName(type)) + " " + ReduceOpName(op) + " count " + std::to_string(count));
        const auto acc_values = RandomValues(DataType::kFloat32, count, rng);
        const auto src_values = RandomValues(type, count, rng);
        std::vector<std::byte> expected(count * 4);
        for (size_t i = 0; i < count; ++i) {
          const float src = type == DataType::kFloat32
                                ? Get<float>(src_values, i)
                                : std::bit_cast<float>(WidenBits(FormatOf(type), Get<uint16_t>(src_values, i)));
          Put(expected, i, CombineReal<float>(op, Get<float>(acc_values, i), src));
        }
        GuardedBuffer acc(count * 4, 4), src(count * DataTypeSize(type), 7);
        acc.Fill(acc_values);
        src.Fill(src_values);
        AccumulateToFloat(type, op, reinterpret_cast<float*>(acc.data()), src.data(), count);
        EXPECT_TRUE(SameElements(DataType::kFloat32, expected, acc.Contents()));
        EXPECT_TRUE(acc.GuardsIntact());
      }
    }
  }
}

// Integer division must truncate toward zero: x == q * n + r with |r| < n and
// r zero or of x's sign. Checked from that property, not recomputed.
template <class T>
void ExpectTruncatedQuotients(const std::vector<std::byte>& before, const std::vector<std::byte>& after,
                              int divisor) {
  for (size_t i = 0; i < before.size() / sizeof(T); ++i) {
    const __int128 x = Get<T>(before, i), q = Get<T>(after, i);
    const __int128 r = x - q * divisor;
    ASSERT_TRUE(r > -divisor && r < divisor && (r == 0 || (r < 0) == (x < 0)))
        << "element " << i << ": " << static_cast<int64_t>(x) << " / " << divisor << " gave "
        << static_cast<int64_t>(q);
  }
}

std::vector<std::byte> ReferenceScale(DataType type, const std::vector<std::byte>& values, int divisor) {
  std::vector<std::byte> out = values;
  const size_t count = values.size() / DataTypeSize(type);
  for (size_t i = 0; i < count; ++i) {
    switch (type) {
      case DataType::kFloat32: {
        const float q = Get<float>(values, i) / static_cast<float>(divisor);
        Put(out, i, std::isnan(q) ? ReferenceNan<float>() : q);
        break;
      }
      case DataType::kFloat64: {
        const double q = Get<double>(values, i) / static_cast<double>(divisor);
        Put(out, i, std::isnan(q) ? ReferenceNan<double>() : q);
        break;
      }
      case DataType::kFloat16:
      case DataType::kBFloat16: {
        const Format16 format = FormatOf(type);
        const uint16_t x = Get<uint16_t>(values, i);
        const float q = static_cast<float>(Decode(format, x)) / static_cast<float>(divisor);
        Put(out, i, format.IsNan(x) ? format.canonical_nan() : Encode(format, q));
        break;
      }
      default: break;  // integers are checked by ExpectTruncatedQuotients
    }
  }
  return out;
}

TEST_P(WideningTest, ScaleDividesEveryType) {
  SILK_USE_KERNEL_PATH_OR_SKIP(GetParam());
  std::mt19937_64 rng(7);
  for (DataType type : kAllTypes) {
    for (int divisor : {1, 2, 3, 7, 100, 1000, 1 << 20}) {
      for (size_t count : {0, 1, 17, 1000, 100003}) {
        SCOPED_TRACE(std::string(DataTypeName(type)) + " / " + std::to_string(divisor) + " count " +
                     std::to_string(count));
        const auto values = RandomValues(type, count, rng);
        GuardedBuffer data(values.size(), 3);
        data.Fill(values);
        Scale(type, data.data(), count, divisor);
        EXPECT_TRUE(data.GuardsIntact());
        switch (type) {
          case DataType::kInt8: ExpectTruncatedQuotients<int8_t>(values, data.Contents(), divisor); break;
          case DataType::kUint8: ExpectTruncatedQuotients<uint8_t>(values, data.Contents(), divisor); break;
          case DataType::kInt32: ExpectTruncatedQuotients<int32_t>(values, data.Contents(), divisor); break;
          case DataType::kInt64: ExpectTruncatedQuotients<int64_t>(values, data.Contents(), divisor); break;
          default: EXPECT_TRUE(SameElements(type, ReferenceScale(type, values, divisor), data.Contents()));
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllPaths, WideningTest, ::testing::ValuesIn(kAllPaths),
                         [](const auto& info) { return std::string(KernelPathName(info.param)); });

}  // namespace
}  // namespace silk::kernels::testing
