// What the collective tests compare against: deterministic inputs for every
// element type, and reductions computed independently of the library (in
// double for floats, in wrapping 64-bit arithmetic for integers). Shared by the
// in-process suite and the multi-process check program.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "collectives/kernels/float16.h"
#include "runtime/core/types.h"

namespace silk::testing {

// FNV-1a: the same on every process (absl::Hash is seeded per process).
inline uint64_t Fnv1a(const void* data, size_t bytes) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < bytes; ++i) h = (h ^ static_cast<const unsigned char*>(data)[i]) * 1099511628211ull;
  return h;
}

inline uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline bool IsFloat(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16 || t == DataType::kBFloat16;
}
inline bool IsSigned(DataType t) { return t == DataType::kInt8 || t == DataType::kInt32 || t == DataType::kInt64; }

// The raw bits of a double rounded to a float type, in the low bytes.
inline uint64_t EncodeFloat(DataType t, double v) {
  switch (t) {
    case DataType::kFloat32: return std::bit_cast<uint32_t>(static_cast<float>(v));
    case DataType::kFloat64: return std::bit_cast<uint64_t>(v);
    case DataType::kFloat16: return FloatToFloat16Bits(static_cast<float>(v));
    case DataType::kBFloat16: return FloatToBFloat16Bits(static_cast<float>(v));
    default: return 0;
  }
}

inline double DecodeFloat(DataType t, uint64_t bits) {
  switch (t) {
    case DataType::kFloat32: return std::bit_cast<float>(static_cast<uint32_t>(bits));
    case DataType::kFloat64: return std::bit_cast<double>(bits);
    case DataType::kFloat16: return Float16BitsToFloat(static_cast<uint16_t>(bits));
    case DataType::kBFloat16: return BFloat16BitsToFloat(static_cast<uint16_t>(bits));
    default: return 0;
  }
}

// An integer's raw bits as a signed or unsigned 64-bit value.
inline int64_t AsSigned(DataType t, uint64_t bits) {
  const int width = static_cast<int>(DataTypeSize(t)) * 8;
  if (width == 64) return static_cast<int64_t>(bits);
  const uint64_t sign = 1ull << (width - 1);
  bits &= (sign << 1) - 1;
  return static_cast<int64_t>((bits ^ sign) - sign);
}
inline uint64_t Truncate(DataType t, uint64_t bits) {
  const int width = static_cast<int>(DataTypeSize(t)) * 8;
  return width == 64 ? bits : bits & ((1ull << width) - 1);
}

inline uint64_t LoadBits(DataType t, const void* buffer, size_t i) {
  const size_t elem = DataTypeSize(t);
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const char*>(buffer) + i * elem, elem);  // little-endian
  return bits;
}
inline void StoreBits(DataType t, void* buffer, size_t i, uint64_t bits) {
  const size_t elem = DataTypeSize(t);
  std::memcpy(static_cast<char*>(buffer) + i * elem, &bits, elem);
}

// Element j of `rank`'s input in a call seeded with `seed`, as raw bits.
// Floats for sum/avg mix signs and magnitudes over many binades, so the order
// of additions changes the rounding; for prod they stay near 1 so products of
// up to a few dozen ranks neither overflow nor underflow. Integers cover
// their whole range, so sums and products wrap.
inline uint64_t InputElement(DataType t, ReduceOp op, uint64_t seed, int rank, size_t j) {
  const uint64_t r = Mix(seed ^ Mix(static_cast<uint64_t>(rank) * 0x100000001B3ull ^ Mix(j)));
  if (!IsFloat(t)) return Truncate(t, r);
  const double sign = (r & 1) ? -1.0 : 1.0;
  const double fraction = static_cast<double>((r >> 8) & 0xFFFFF) / double(1 << 20);
  if (op == ReduceOp::kProd) return EncodeFloat(t, sign * (0.5 + 1.5 * fraction));
  const int spread = t == DataType::kFloat16 ? 6 : t == DataType::kFloat64 ? 40 : 20;
  const int exponent = static_cast<int>((r >> 32) % (2 * spread + 1)) - spread;
  return EncodeFloat(t, sign * std::ldexp(1.0 + fraction, exponent));
}

// Relative precision of one rounding in the type.
inline double Epsilon(DataType t) {
  switch (t) {
    case DataType::kFloat32: return std::ldexp(1.0, -23);
    case DataType::kFloat64: return std::ldexp(1.0, -52);
    case DataType::kFloat16: return std::ldexp(1.0, -10);
    case DataType::kBFloat16: return std::ldexp(1.0, -7);
    default: return 0;
  }
}

// Whether `actual` is a correct reduction of inputs[0..n) (raw bits). Integers
// must match exactly (sum and prod wrap, avg is the wrapped sum divided with
// truncation); float min/max exactly; float sum/avg/prod within the rounding
// n steps of the type's arithmetic can cause. On failure `why` says how.
inline bool CheckReduction(DataType t, ReduceOp op, const uint64_t* inputs, int n, uint64_t actual, std::string* why) {
  if (!IsFloat(t)) {
    uint64_t expected = 0;
    if (op == ReduceOp::kSum || op == ReduceOp::kAvg) {
      for (int q = 0; q < n; ++q) expected += inputs[q];
      if (op == ReduceOp::kAvg) {
        expected = IsSigned(t) ? static_cast<uint64_t>(AsSigned(t, expected) / n) : Truncate(t, expected) / n;
      }
    } else if (op == ReduceOp::kProd) {
      expected = 1;
      for (int q = 0; q < n; ++q) expected *= inputs[q];
    } else {
      expected = inputs[0];
      for (int q = 1; q < n; ++q) {
        const bool less = IsSigned(t) ? AsSigned(t, inputs[q]) < AsSigned(t, expected)
                                      : Truncate(t, inputs[q]) < Truncate(t, expected);
        if (less == (op == ReduceOp::kMin)) expected = inputs[q];
      }
    }
    expected = Truncate(t, expected);
    if (Truncate(t, actual) == expected) return true;
    *why = absl::StrFormat("got %d, expected %d", AsSigned(t, actual), AsSigned(t, expected));
    return false;
  }
  const double got = DecodeFloat(t, actual);
  double expected = op == ReduceOp::kProd ? 1.0 : 0.0, magnitude = 0.0;
  for (int q = 0; q < n; ++q) {
    const double x = DecodeFloat(t, inputs[q]);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg: expected += x; break;
      case ReduceOp::kProd: expected *= x; break;
      case ReduceOp::kMin: expected = q == 0 ? x : std::min(expected, x); break;
      case ReduceOp::kMax: expected = q == 0 ? x : std::max(expected, x); break;
    }
    magnitude += std::fabs(x);
  }
  double tolerance = 0;
  if (op == ReduceOp::kAvg) {
    expected /= n;
    magnitude /= n;
  }
  if (op == ReduceOp::kSum || op == ReduceOp::kAvg) tolerance = (n + 1) * Epsilon(t) * magnitude;
  if (op == ReduceOp::kProd) tolerance = (n + 1) * Epsilon(t) * std::fabs(expected);
  if (std::fabs(got - expected) <= tolerance) return true;
  *why = absl::StrFormat("got %.17g, expected %.17g within %.3g", got, expected, tolerance);
  return false;
}

}  // namespace silk::testing
