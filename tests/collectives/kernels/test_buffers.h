// Test inputs for the kernels: guarded buffers at chosen misalignments, random
// values of every type (with the awkward ones: NaNs, infinities, signed zeros,
// subnormals, integer extremes), whole-buffer reference results, and a
// comparison that names the first differing element.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "runtime/core/types.h"
#include "tests/collectives/kernels/reference.h"

namespace silk::kernels::testing {

inline constexpr DataType kAllTypes[] = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16,
                                         DataType::kBFloat16, DataType::kInt8,    DataType::kUint8,
                                         DataType::kInt32,   DataType::kInt64};
inline constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kProd, ReduceOp::kMin, ReduceOp::kMax,
                                       ReduceOp::kAvg};

// `size` bytes starting `offset` bytes past a 64-byte boundary, fenced by
// guard bytes that the code under test must not touch.
class GuardedBuffer {
 public:
  static constexpr size_t kGuardBytes = 64;
  static constexpr std::byte kGuardValue{0xA5};

  GuardedBuffer(size_t size, size_t offset) : size_(size), storage_(size + offset + 2 * kGuardBytes + 64, kGuardValue) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(storage_.data()) + kGuardBytes;
    data_ = storage_.data() + (((start + 63) & ~uintptr_t{63}) - reinterpret_cast<uintptr_t>(storage_.data())) + offset;
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  std::byte* data() { return data_; }
  size_t size() const { return size_; }
  void Fill(const std::vector<std::byte>& bytes) { std::copy_n(bytes.begin(), size_, data_); }
  std::vector<std::byte> Contents() const { return {data_, data_ + size_}; }

  bool GuardsIntact() const {
    const auto intact = [](const std::byte* from, const std::byte* to) {
      return std::all_of(from, to, [](std::byte b) { return b == kGuardValue; });
    };
    return intact(storage_.data(), data_) && intact(data_ + size_, storage_.data() + storage_.size());
  }

 private:
  size_t size_;
  std::vector<std::byte> storage_;
  std::byte* data_;
};

template <class T>
T Get(const std::vector<std::byte>& bytes, size_t i) {
  T value;
  std::memcpy(&value, bytes.data() + i * sizeof(T), sizeof(T));
  return value;
}

template <class T>
void Put(std::vector<std::byte>& bytes, size_t i, T value) {
  std::memcpy(bytes.data() + i * sizeof(T), &value, sizeof(T));
}

// Mostly ordinary numbers (so sums and products round in interesting ways),
// plus specials and raw random bit patterns.
inline std::vector<std::byte> RandomValues(DataType type, size_t count, std::mt19937_64& rng) {
  std::vector<std::byte> bytes(count * DataTypeSize(type));
  for (size_t i = 0; i < count; ++i) {
    const uint64_t bits = rng();
    const uint64_t kind = rng() % 20;
    switch (type) {
      case DataType::kFloat32: {
        static constexpr uint32_t kSpecials[] = {0,          0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000,
                                                 0x7F800001, 0xFFC12345, 0x00000001, 0x807FFFFF, 0x7F7FFFFF,
                                                 0xFF7FFFFF, 0x00800000, 0x3F800000};
        uint32_t value = static_cast<uint32_t>(bits);  // kind 2: raw bits
        if (kind < 2) value = kSpecials[bits % std::size(kSpecials)];
        if (kind == 3) value &= 0x807FFFFF;  // subnormal
        if (kind > 3) value = (value & 0x807FFFFF) | static_cast<uint32_t>(127 - 12 + (bits >> 40) % 25) << 23;
        Put(bytes, i, value);
        break;
      }
      case DataType::kFloat64: {
        static constexpr uint64_t kSpecials[] = {0, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
                                                 0x7FF8000000000000, 0x7FF0000000000001, 0x0000000000000001,
                                                 0x7FEFFFFFFFFFFFFF};
        uint64_t value = bits;
        if (kind < 2) value = kSpecials[bits % std::size(kSpecials)];
        if (kind == 3) value &= 0x800FFFFFFFFFFFFF;
        if (kind > 3) value = (value & 0x800FFFFFFFFFFFFF) | (uint64_t{1023 - 20 + (bits >> 3) % 41} << 52);
        Put(bytes, i, value);
        break;
      }
      case DataType::kFloat16:
      case DataType::kBFloat16: {
        const Format16 format = type == DataType::kFloat16 ? kHalf : kBrain;
        static constexpr uint16_t kHalfSpecials[] = {0, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x0001, 0x83FF, 0x7BFF, 0x0400};
        static constexpr uint16_t kBrainSpecials[] = {0, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0x0001, 0x807F, 0x7F7F, 0x0080};
        uint16_t value = static_cast<uint16_t>(bits);
        if (kind < 2) value = (type == DataType::kFloat16 ? kHalfSpecials : kBrainSpecials)[bits % 10];
        if (kind > 9) {  // near 1.0: exponent within +-6 of the bias
          const uint32_t field = static_cast<uint32_t>(format.bias() - 6 + (bits >> 20) % 13);
          value = static_cast<uint16_t>((value & (0x8000 | ((1u << format.mantissa_bits) - 1))) |
                                        (field << format.mantissa_bits));
        }
        Put(bytes, i, value);
        break;
      }
      case DataType::kInt8:
      case DataType::kUint8:
      case DataType::kInt32:
      case DataType::kInt64: {
        // Raw bits, with the extremes and small numbers now and then.
        static constexpr int64_t kSpecials[] = {0, 1, -1, 2, -2, 0x7F, -0x80, 0xFF, 0x7FFFFFFF, -0x7FFFFFFF - 1,
                                                INT64_MAX, INT64_MIN};
        const uint64_t value = kind < 3 ? static_cast<uint64_t>(kSpecials[bits % std::size(kSpecials)]) : bits;
        std::memcpy(bytes.data() + i * DataTypeSize(type), &value, DataTypeSize(type));  // little-endian low bytes
        break;
      }
    }
  }
  return bytes;
}

template <class T>
void CombineIntegers(ReduceOp op, const std::vector<std::byte>& a, const std::vector<std::byte>& b,
                     std::vector<std::byte>& out, size_t count) {
  for (size_t i = 0; i < count; ++i) Put(out, i, CombineInteger<T>(op, Get<T>(a, i), Get<T>(b, i)));
}

// out[i] = a[i] (op) b[i], computed by the reference.
inline std::vector<std::byte> ReferenceReduce(DataType type, ReduceOp op, const std::vector<std::byte>& a,
                                              const std::vector<std::byte>& b, size_t count) {
  std::vector<std::byte> out(count * DataTypeSize(type));
  switch (type) {
    case DataType::kFloat32:
      for (size_t i = 0; i < count; ++i) Put(out, i, CombineReal<float>(op, Get<float>(a, i), Get<float>(b, i)));
      break;
    case DataType::kFloat64:
      for (size_t i = 0; i < count; ++i) Put(out, i, CombineReal<double>(op, Get<double>(a, i), Get<double>(b, i)));
      break;
    case DataType::kFloat16:
    case DataType::kBFloat16: {
      const Format16 format = type == DataType::kFloat16 ? kHalf : kBrain;
      for (size_t i = 0; i < count; ++i) {
        Put(out, i, Combine16(format, op, Get<uint16_t>(a, i), Get<uint16_t>(b, i)));
      }
      break;
    }
    case DataType::kInt8: CombineIntegers<int8_t>(op, a, b, out, count); break;
    case DataType::kUint8: CombineIntegers<uint8_t>(op, a, b, out, count); break;
    case DataType::kInt32: CombineIntegers<int32_t>(op, a, b, out, count); break;
    case DataType::kInt64: CombineIntegers<int64_t>(op, a, b, out, count); break;
  }
  return out;
}

// Bit-exact comparison; on failure names the first differing element.
inline ::testing::AssertionResult SameElements(DataType type, const std::vector<std::byte>& expected,
                                               const std::vector<std::byte>& actual) {
  if (expected.size() != actual.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << expected.size() << " vs " << actual.size();
  }
  const size_t width = DataTypeSize(type);
  for (size_t i = 0; i < expected.size(); i += width) {
    if (std::memcmp(expected.data() + i, actual.data() + i, width) != 0) {
      uint64_t want = 0, got = 0;
      std::memcpy(&want, expected.data() + i, width);
      std::memcpy(&got, actual.data() + i, width);
      return ::testing::AssertionFailure()
             << DataTypeName(type) << " element " << i / width << ": expected bits "
             << absl::StrFormat("%#x", want) << ", got " << absl::StrFormat("%#x", got);
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace silk::kernels::testing
