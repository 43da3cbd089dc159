// One implementation path (scalar, AVX2, AVX-512) as a table of entry points,
// and the switch from run-time (DataType, ReduceOp) to the compile-time loops
// of a path. Internal to collectives/kernels; reduce.cc picks the table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "collectives/kernels/float16.h"
#include "runtime/core/types.h"

namespace silk::kernels::internal {

// Arguments are already validated: known type and op, divisor >= 1, and
// float-like types only for the conversion entries.
struct KernelTable {
  void (*reduce)(DataType type, ReduceOp op, void* dst, const void* a, const void* b, size_t count);
  void (*scale)(DataType type, void* data, size_t count, int divisor);
  void (*convert_to_float)(DataType type, float* dst, const void* src, size_t count);
  void (*accumulate_to_float)(DataType type, ReduceOp op, float* acc, const void* src, size_t count);
  void (*convert_from_float)(DataType type, void* dst, const float* src, size_t count);
};

const KernelTable& ScalarKernels();
// Null where this build has no such path (not x86-64); reduce.cc checks the CPU.
const KernelTable* Avx2Kernels();
const KernelTable* Avx512Kernels();

// Calls `fn(T{})` with the C++ element type that `type` names.
template <class Fn>
void WithElementType(DataType type, Fn&& fn) {
  switch (type) {
    case DataType::kFloat32: return fn(float{});
    case DataType::kFloat64: return fn(double{});
    case DataType::kFloat16: return fn(Float16{});
    case DataType::kBFloat16: return fn(BFloat16{});
    case DataType::kInt8: return fn(int8_t{});
    case DataType::kUint8: return fn(uint8_t{});
    case DataType::kInt32: return fn(int32_t{});
    case DataType::kInt64: return fn(int64_t{});
  }
}

// Builds a table from a `Loops` class providing, for element type T:
//   template <ReduceOp kOp, class T> static void Reduce(std::byte* dst, const std::byte* a, const std::byte* b, size_t);
//   template <class T> static void Scale(std::byte* data, size_t, int divisor);
//   template <class T> static void ToFloat(float* dst, const std::byte* src, size_t);
//   template <ReduceOp kOp, class T> static void AccumulateToFloat(float* acc, const std::byte* src, size_t);
//   template <class T> static void FromFloat(std::byte* dst, const float* src, size_t);
// kOp is never kAvg (it reduces as kSum).
template <class Loops>
class TableFor {
 private:
  template <class Fn>
  static void WithOp(ReduceOp op, Fn&& fn) {
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg: return fn.template operator()<ReduceOp::kSum>();
      case ReduceOp::kProd: return fn.template operator()<ReduceOp::kProd>();
      case ReduceOp::kMin: return fn.template operator()<ReduceOp::kMin>();
      case ReduceOp::kMax: return fn.template operator()<ReduceOp::kMax>();
    }
  }

  static void ReduceAny(DataType type, ReduceOp op, void* dst, const void* a, const void* b,
                        size_t count) {
    WithElementType(type, [&](auto element) {
      using T = decltype(element);
      WithOp(op, [&]<ReduceOp kOp>() {
        Loops::template Reduce<kOp, T>(static_cast<std::byte*>(dst), static_cast<const std::byte*>(a),
                                       static_cast<const std::byte*>(b), count);
      });
    });
  }

  static void ScaleAny(DataType type, void* data, size_t count, int divisor) {
    WithElementType(type, [&](auto element) {
      Loops::template Scale<decltype(element)>(static_cast<std::byte*>(data), count, divisor);
    });
  }

  // The conversions exist for the float types only; integer types never get here.
  static void ToFloatAny(DataType type, float* dst, const void* src, size_t count) {
    WithFloatType(type, [&](auto element) {
      Loops::template ToFloat<decltype(element)>(dst, static_cast<const std::byte*>(src), count);
    });
  }

  static void AccumulateAny(DataType type, ReduceOp op, float* acc, const void* src, size_t count) {
    WithFloatType(type, [&](auto element) {
      using T = decltype(element);
      WithOp(op, [&]<ReduceOp kOp>() {
        Loops::template AccumulateToFloat<kOp, T>(acc, static_cast<const std::byte*>(src), count);
      });
    });
  }

  static void FromFloatAny(DataType type, void* dst, const float* src, size_t count) {
    WithFloatType(type, [&](auto element) {
      Loops::template FromFloat<decltype(element)>(static_cast<std::byte*>(dst), src, count);
    });
  }

  template <class Fn>
  static void WithFloatType(DataType type, Fn&& fn) {
    switch (type) {
      case DataType::kFloat32: return fn(float{});
      case DataType::kFloat16: return fn(Float16{});
      case DataType::kBFloat16: return fn(BFloat16{});
      default: return;
    }
  }

 public:
  static constexpr KernelTable kTable = {&ReduceAny, &ScaleAny, &ToFloatAny, &AccumulateAny,
                                         &FromFloatAny};
};

}  // namespace silk::kernels::internal
