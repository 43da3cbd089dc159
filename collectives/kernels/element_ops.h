// The meaning of each reduction on one element: the portable definition that
// the scalar path runs and that the SIMD paths reproduce lane by lane (they use
// these functions for their tails). Internal to collectives/kernels.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "collectives/kernels/float16.h"
#include "runtime/core/types.h"

namespace silk::kernels::internal {

// Buffers arrive as untyped bytes with any alignment, so elements are read and
// written with memcpy (one plain load/store once compiled).
template <class T>
inline T LoadAt(const std::byte* base, size_t index) {
  T value;
  std::memcpy(&value, base + index * sizeof(T), sizeof(T));
  return value;
}

template <class T>
inline void StoreAt(std::byte* base, size_t index, T value) {
  std::memcpy(base + index * sizeof(T), &value, sizeof(T));
}

template <class T>
inline constexpr bool kIsFloatLike = std::is_floating_point_v<T> ||
                                     std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

// The type a floating-point element is computed in.
template <class T>
using ComputeType = std::conditional_t<std::is_same_v<T, double>, double, float>;

inline float Widen(float value) { return value; }
inline double Widen(double value) { return value; }
inline float Widen(Float16 value) { return value.ToFloat(); }
inline float Widen(BFloat16 value) { return value.ToFloat(); }

template <class T>
inline T Narrow(ComputeType<T> value) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    return T(value);
  } else {
    return value;
  }
}

template <class F>
inline F CanonicalNan() {
  if constexpr (std::is_same_v<F, double>) {
    return std::bit_cast<double>(uint64_t{0x7FF8000000000000});
  } else {
    return std::bit_cast<float>(uint32_t{0x7FC00000});
  }
}

template <class F>
inline bool IsNan(F value) {
  return value != value;
}

template <class F>
inline F CanonicalizeNan(F value) {
  return IsNan(value) ? CanonicalNan<F>() : value;
}

template <class F>
using BitsOf = std::conditional_t<sizeof(F) == 8, uint64_t, uint32_t>;

// IEEE 754-2019 minimum: NaN if either is NaN, and -0 below +0. When the
// values compare equal, OR-ing the bits yields -0 for a {-0, +0} pair and the
// value itself otherwise.
template <class F>
inline F Minimum(F a, F b) {
  if (IsNan(a) || IsNan(b)) return CanonicalNan<F>();
  if (a == b) return std::bit_cast<F>(std::bit_cast<BitsOf<F>>(a) | std::bit_cast<BitsOf<F>>(b));
  return a < b ? a : b;
}

// IEEE 754-2019 maximum: NaN if either is NaN, and +0 above -0 (AND of the bits).
template <class F>
inline F Maximum(F a, F b) {
  if (IsNan(a) || IsNan(b)) return CanonicalNan<F>();
  if (a == b) return std::bit_cast<F>(std::bit_cast<BitsOf<F>>(a) & std::bit_cast<BitsOf<F>>(b));
  return a > b ? a : b;
}

// kAvg never reaches here: callers map it to kSum (see reduce.h).
template <ReduceOp kOp, class F>
inline F CombineComputed(F a, F b) {
  static_assert(kOp != ReduceOp::kAvg);
  if constexpr (kOp == ReduceOp::kSum) return CanonicalizeNan(a + b);
  if constexpr (kOp == ReduceOp::kProd) return CanonicalizeNan(a * b);
  if constexpr (kOp == ReduceOp::kMin) return Minimum(a, b);
  if constexpr (kOp == ReduceOp::kMax) return Maximum(a, b);
}

// Integers: sum and prod in the unsigned type, which wraps without UB; the
// conversion back to the signed type is modular (C++20).
template <ReduceOp kOp, class T>
inline T CombineInteger(T a, T b) {
  static_assert(kOp != ReduceOp::kAvg);
  using Unsigned = std::make_unsigned_t<T>;
  if constexpr (kOp == ReduceOp::kSum) {
    return static_cast<T>(static_cast<Unsigned>(static_cast<Unsigned>(a) + static_cast<Unsigned>(b)));
  }
  if constexpr (kOp == ReduceOp::kProd) {
    return static_cast<T>(static_cast<Unsigned>(static_cast<Unsigned>(a) * static_cast<Unsigned>(b)));
  }
  if constexpr (kOp == ReduceOp::kMin) return a < b ? a : b;
  if constexpr (kOp == ReduceOp::kMax) return a > b ? a : b;
}

template <ReduceOp kOp, class T>
inline T Combine(T a, T b) {
  if constexpr (kIsFloatLike<T>) {
    return Narrow<T>(CombineComputed<kOp>(Widen(a), Widen(b)));
  } else {
    return CombineInteger<kOp>(a, b);
  }
}

// One element of Scale(); divisor >= 1.
template <class T>
inline T Divide(T value, int divisor) {
  if constexpr (kIsFloatLike<T>) {
    using F = ComputeType<T>;
    return Narrow<T>(CanonicalizeNan(Widen(value) / static_cast<F>(divisor)));
  } else {
    // In 64 bits so that a divisor beyond T's range still divides exactly.
    return static_cast<T>(static_cast<int64_t>(value) / divisor);
  }
}

}  // namespace silk::kernels::internal
