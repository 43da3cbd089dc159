// Public entry points: validate arguments, then call the chosen path's table.
#include "collectives/kernels/reduce.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "collectives/kernels/kernel_table.h"

namespace silk::kernels {
namespace {

using internal::KernelTable;

[[noreturn]] void DieOnBadArgument(const char* function, const char* what, long value) {
  std::fprintf(stderr, "silk::kernels::%s: invalid %s (%ld)\n", function, what, value);
  std::abort();
}

void CheckType(const char* function, DataType type) {
  if (!IsValidDataType(static_cast<int>(type))) DieOnBadArgument(function, "DataType", static_cast<long>(type));
}

void CheckOp(const char* function, ReduceOp op) {
  if (!IsValidReduceOp(static_cast<int>(op))) DieOnBadArgument(function, "ReduceOp", static_cast<long>(op));
}

void CheckWideningType(const char* function, DataType type) {
  if (type != DataType::kFloat16 && type != DataType::kBFloat16 && type != DataType::kFloat32) {
    DieOnBadArgument(function, "DataType for float widening", static_cast<long>(type));
  }
}

bool CpuSupports(KernelPath path) {
#if defined(__x86_64__)
  __builtin_cpu_init();  // we may run from a static initialiser, before libgcc's
  switch (path) {
    case KernelPath::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("f16c");
    case KernelPath::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    default:
      return true;
  }
#else
  return path == KernelPath::kScalar;
#endif
}

// What this process can run, detected once.
constexpr int kNumPaths = 4;  // the values of KernelPath
struct Paths {
  const KernelTable* tables[kNumPaths] = {};  // indexed by KernelPath; null if unavailable
  KernelPath best = KernelPath::kScalar;
};

const Paths& AvailablePaths() {
  static const Paths paths = [] {
    Paths found;
    auto table = [&](KernelPath path) -> const KernelTable*& { return found.tables[static_cast<int>(path)]; };
    table(KernelPath::kScalar) = &internal::ScalarKernels();
    if (CpuSupports(KernelPath::kAvx2)) table(KernelPath::kAvx2) = internal::Avx2Kernels();
    if (CpuSupports(KernelPath::kAvx512)) table(KernelPath::kAvx512) = internal::Avx512Kernels();
    for (KernelPath path : {KernelPath::kAvx512, KernelPath::kAvx2}) {  // widest first
      if (table(path) != nullptr) {
        found.best = path;
        break;
      }
    }
    table(KernelPath::kAuto) = table(found.best);
    return found;
  }();
  return paths;
}

std::atomic<KernelPath> forced_path{KernelPath::kAuto};

const KernelTable& ActiveTable() {
  return *AvailablePaths().tables[static_cast<int>(forced_path.load(std::memory_order_relaxed))];
}

}  // namespace

void Reduce(DataType type, ReduceOp op, void* dst, const void* a, const void* b, size_t count) {
  CheckType("Reduce", type);
  CheckOp("Reduce", op);
  if (count == 0) return;
  ActiveTable().reduce(type, op, dst, a, b, count);
}

void ReduceInto(DataType type, ReduceOp op, void* dst, const void* src, size_t count) {
  CheckType("ReduceInto", type);
  CheckOp("ReduceInto", op);
  if (count == 0) return;
  ActiveTable().reduce(type, op, dst, dst, src, count);
}

void Scale(DataType type, void* data, size_t count, int divisor) {
  CheckType("Scale", type);
  if (divisor < 1) DieOnBadArgument("Scale", "divisor", divisor);
  if (count == 0) return;
  ActiveTable().scale(type, data, count, divisor);
}

void ConvertToFloat(DataType type, float* dst, const void* src, size_t count) {
  CheckWideningType("ConvertToFloat", type);
  if (count == 0) return;
  ActiveTable().convert_to_float(type, dst, src, count);
}

void AccumulateToFloat(DataType type, ReduceOp op, float* acc, const void* src, size_t count) {
  CheckWideningType("AccumulateToFloat", type);
  CheckOp("AccumulateToFloat", op);
  if (count == 0) return;
  ActiveTable().accumulate_to_float(type, op, acc, src, count);
}

void ConvertFromFloat(DataType type, void* dst, const float* src, size_t count) {
  CheckWideningType("ConvertFromFloat", type);
  if (count == 0) return;
  ActiveTable().convert_from_float(type, dst, src, count);
}

const char* KernelPathName(KernelPath path) {
  switch (path) {
    case KernelPath::kAuto: return "auto";
    case KernelPath::kScalar: return "scalar";
    case KernelPath::kAvx2: return "avx2";
    case KernelPath::kAvx512: return "avx512";
  }
  return "unknown-path";
}

bool IsKernelPathAvailable(KernelPath path) {
  const int index = static_cast<int>(path);
  return index >= 0 && index < kNumPaths && AvailablePaths().tables[index] != nullptr;
}

KernelPath ActiveKernelPath() {
  const KernelPath path = forced_path.load(std::memory_order_relaxed);
  return path == KernelPath::kAuto ? AvailablePaths().best : path;
}

bool SetKernelPathForTesting(KernelPath path) {
  if (!IsKernelPathAvailable(path)) return false;
  forced_path.store(path, std::memory_order_relaxed);
  return true;
}

}  // namespace silk::kernels
