#include "examples/perf/perf_data.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "collectives/kernels/float16.h"

namespace silk_perf {

Layout LayoutFor(Collective c, size_t bytes, size_t elem, int n, int rank) {
  const size_t total = bytes / elem, block = total / n;
  switch (c) {
    case Collective::kReduceScatter: return {block, block * n, block, 0, rank * block};
    case Collective::kAllgather: return {block, block, block * n, rank * block, 0};
    case Collective::kAlltoall: return {block, block * n, block * n, 0, 0};
    default: return {total, total, total, 0, 0};
  }
}

// ---- Data and its check ----

namespace {

// Element j of rank q's input: small integers, so that sums, products, minima
// and maxima are exact in every type, and position-dependent, so that data in
// the wrong place is noticed. Products: one rank in n contributes 2, the rest 1.
double InputValue(ReduceOp op, int n, int q, size_t j) {
  if (op == ReduceOp::kProd) return (q + j) % n == 0 ? 2.0 : 1.0;
  return static_cast<double>((q * 7 + j * 3) % 11 + 1);
}

void Store(DataType t, void* buffer, size_t i, double v) {
  char* at = static_cast<char*>(buffer) + i * silk::DataTypeSize(t);
  auto put = [&](auto x) { std::memcpy(at, &x, sizeof(x)); };
  switch (t) {
    case DataType::kFloat32: put(static_cast<float>(v)); break;
    case DataType::kFloat64: put(v); break;
    case DataType::kFloat16: put(silk::FloatToFloat16Bits(static_cast<float>(v))); break;
    case DataType::kBFloat16: put(silk::FloatToBFloat16Bits(static_cast<float>(v))); break;
    case DataType::kInt8: put(static_cast<int8_t>(v)); break;
    case DataType::kUint8: put(static_cast<uint8_t>(v)); break;
    case DataType::kInt32: put(static_cast<int32_t>(v)); break;
    case DataType::kInt64: put(static_cast<int64_t>(v)); break;
  }
}

double Load(DataType t, const void* buffer, size_t i) {
  const char* at = static_cast<const char*>(buffer) + i * silk::DataTypeSize(t);
  auto get = [&](auto x) {
    std::memcpy(&x, at, sizeof(x));
    return x;
  };
  switch (t) {
    case DataType::kFloat32: return get(float{});
    case DataType::kFloat64: return get(double{});
    case DataType::kFloat16: return silk::Float16BitsToFloat(get(uint16_t{}));
    case DataType::kBFloat16: return silk::BFloat16BitsToFloat(get(uint16_t{}));
    case DataType::kInt8: return get(int8_t{});
    case DataType::kUint8: return get(uint8_t{});
    case DataType::kInt32: return get(int32_t{});
    case DataType::kInt64: return static_cast<double>(get(int64_t{}));
  }
  return 0;
}

// The reduction of element j over every rank, wrapped into the type as the
// hardware would for integers.
double Expected(DataType t, ReduceOp op, int n, size_t j) {
  double acc = InputValue(op, n, 0, j);
  for (int q = 1; q < n; ++q) {
    const double x = InputValue(op, n, q, j);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg: acc += x; break;
      case ReduceOp::kProd: acc *= x; break;
      case ReduceOp::kMin: acc = std::min(acc, x); break;
      case ReduceOp::kMax: acc = std::max(acc, x); break;
    }
  }
  const bool integer = t == DataType::kInt8 || t == DataType::kUint8 || t == DataType::kInt32 || t == DataType::kInt64;
  if (integer) {  // wrap as the type does, then (avg) divide with truncation
    const int bits = static_cast<int>(silk::DataTypeSize(t)) * 8;
    int64_t wrapped = static_cast<int64_t>(acc);
    if (bits < 64) {
      const uint64_t mask = (uint64_t{1} << bits) - 1;
      uint64_t u = static_cast<uint64_t>(wrapped) & mask;
      const bool is_signed = t != DataType::kUint8;
      if (is_signed && (u >> (bits - 1))) u |= ~mask;
      wrapped = static_cast<int64_t>(u);
    }
    if (op == ReduceOp::kAvg) wrapped /= n;
    return static_cast<double>(wrapped);
  }
  return op == ReduceOp::kAvg ? acc / n : acc;
}

bool Close(DataType t, double got, double want) {
  // Float sums of these small integers are exact until they outgrow the
  // mantissa (bfloat16: 256); beyond, allow the rounding of n additions.
  const double eps = t == DataType::kBFloat16 ? 1.0 / 128 : t == DataType::kFloat16 ? 1.0 / 1024 : 1e-6;
  return std::fabs(got - want) <= eps * std::max(1.0, std::fabs(want)) * 16;
}

// Element j of rank q's input under --wan-compression: values in (-4, 4) of
// every magnitude a gradient mixes, cheap to recompute for the reference.
float RealValue(int q, size_t j) {
  uint64_t h = (static_cast<uint64_t>(j) * 0x9E3779B97F4A7C15ull) ^ (static_cast<uint64_t>(q + 1) * 0xC2B2AE3D27D4EB4Full);
  h ^= h >> 29;
  const float unit = static_cast<float>(static_cast<int64_t>(h & 0xFFFF) - 32768) / 32768.0f;
  return unit * static_cast<float>(1 << ((h >> 16) & 1)) * (((h >> 17) & 7) == 0 ? 2.0f : 1.0f);
}

double RealExpected(const Flags& f, int n, size_t j) {
  double sum = 0;
  for (int q = 0; q < n; ++q) sum += RealValue(q, j);
  return f.redop == ReduceOp::kAvg ? sum / n : sum;
}

}  // namespace

void FillInput(const Flags& f, int n, int rank, const Layout& l, void* input) {
  if (f.real_inputs()) {
    for (size_t j = 0; j < l.send; ++j) Store(f.type, input, j, RealValue(rank, j));
    return;
  }
  for (size_t j = 0; j < l.send; ++j) Store(f.type, input, j, InputValue(f.redop, n, rank, j));
}

ErrorStats MeasureError(const Flags& f, int n, const Layout& l, const void* output) {
  ErrorStats e;
  for (size_t i = 0; i < l.count; ++i) {
    const double got = Load(f.type, output, i), want = RealExpected(f, n, i), err = got - want;
    e.max_err = std::max(e.max_err, std::isnan(err) ? INFINITY : std::fabs(err));
    e.max_ref = std::max(e.max_ref, std::fabs(want));
    e.sum_err2 += err * err;
    e.sum_ref2 += want * want;
  }
  const auto* bytes = static_cast<const unsigned char*>(output);
  for (size_t i = 0; i < l.count * silk::DataTypeSize(f.type); ++i) e.hash = (e.hash ^ bytes[i]) * 1099511628211ull;
  return e;
}

int64_t CountWrong(const Flags& f, int n, int rank, const Layout& l, const void* output) {
  int64_t wrong = 0;
  const DataType t = f.type;
  auto check = [&](size_t i, double want) { wrong += Close(t, Load(t, output, i), want) ? 0 : 1; };
  switch (f.collective) {
    case Collective::kAllreduce:
      for (size_t i = 0; i < l.count; ++i) check(i, f.real_inputs() ? RealExpected(f, n, i) : Expected(t, f.redop, n, i));
      break;
    case Collective::kReduce:
      if (rank != f.root) break;
      for (size_t i = 0; i < l.count; ++i) check(i, Expected(t, f.redop, n, i));
      break;
    case Collective::kReduceScatter:
      for (size_t i = 0; i < l.count; ++i) check(i, Expected(t, f.redop, n, rank * l.count + i));
      break;
    case Collective::kAllgather:
      for (int q = 0; q < n; ++q) {
        for (size_t i = 0; i < l.count; ++i) check(q * l.count + i, InputValue(f.redop, n, q, i));
      }
      break;
    case Collective::kBroadcast:
      for (size_t i = 0; i < l.count; ++i) check(i, InputValue(f.redop, n, f.root, i));
      break;
    case Collective::kAlltoall:
      for (int q = 0; q < n; ++q) {
        for (size_t i = 0; i < l.count; ++i) check(q * l.count + i, InputValue(f.redop, n, q, rank * l.count + i));
      }
      break;
    case Collective::kBarrier: break;  // nothing to hold
  }
  return wrong;
}

}  // namespace silk_perf
