// silk-reduce-bench: reduction kernel throughput next to memcpy's.
//
// Every figure is buffer-size bytes per second: a reduction of N bytes reads
// two N-byte inputs and writes one, memcpy reads one and writes one. The
// summary at the end prints each kernel's ratio to memcpy of the same size;
// the target for float32 and bfloat16 sums of 64 MiB is >= 0.80. The WAN
// codes (compression/quantizer.h, groups of 256) beside them: quantize (with
// error feedback, as the owner of a block does) and decode, in float32 bytes.
//
//   silk-reduce-bench --benchmark_min_time=0.5 [--benchmark_filter=64MiB]
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collectives/compression/quantizer.h"
#include "collectives/kernels/float16.h"
#include "collectives/kernels/reduce.h"
#include "runtime/core/types.h"

namespace silk::kernels {
namespace {

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;

std::string SizeName(size_t bytes) {
  return bytes >= kMiB ? std::to_string(bytes / kMiB) + "MiB" : std::to_string(bytes / kKiB) + "KiB";
}

// Three buffers of `bytes`, filled with ordinary values (no NaN, no subnormal:
// those would measure the FPU's slow paths, not the kernel).
struct Buffers {
  std::vector<std::byte> a, b, dst;
};

void Fill(DataType type, std::vector<std::byte>& buffer, float value) {
  const size_t count = buffer.size() / DataTypeSize(type);
  for (size_t i = 0; i < count; ++i) {
    const float x = value + static_cast<float>(i % 7) * 0.125f;
    std::byte* at = buffer.data() + i * DataTypeSize(type);
    if (type == DataType::kFloat16) {
      const uint16_t bits = FloatToFloat16Bits(x);
      std::memcpy(at, &bits, 2);
    } else if (type == DataType::kBFloat16) {
      const uint16_t bits = FloatToBFloat16Bits(x);
      std::memcpy(at, &bits, 2);
    } else {
      std::memcpy(at, &x, 4);
    }
  }
}

Buffers& BuffersFor(DataType type, size_t bytes) {
  static std::map<std::pair<DataType, size_t>, std::unique_ptr<Buffers>> cache;
  auto& slot = cache[{type, bytes}];
  if (!slot) {
    slot = std::make_unique<Buffers>();
    for (auto* buffer : {&slot->a, &slot->b, &slot->dst}) buffer->resize(bytes);
    Fill(type, slot->a, 1.5f);
    Fill(type, slot->b, 0.25f);
    Fill(type, slot->dst, 1.0f);
  }
  return *slot;
}

void BM_Memcpy(benchmark::State& state, size_t bytes) {
  Buffers& buffers = BuffersFor(DataType::kFloat32, bytes);
  for (auto _ : state) {
    std::memcpy(buffers.dst.data(), buffers.a.data(), bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

// in_place: dst += b (ReduceInto); otherwise dst = a + b (Reduce).
void BM_Sum(benchmark::State& state, DataType type, size_t bytes, KernelPath path, bool in_place) {
  if (!SetKernelPathForTesting(path)) {
    state.SkipWithError("kernel path not available on this CPU");
    return;
  }
  Buffers& buffers = BuffersFor(type, bytes);
  const size_t count = bytes / DataTypeSize(type);
  for (auto _ : state) {
    if (in_place) {
      ReduceInto(type, ReduceOp::kSum, buffers.dst.data(), buffers.b.data(), count);
    } else {
      Reduce(type, ReduceOp::kSum, buffers.dst.data(), buffers.a.data(), buffers.b.data(), count);
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  SetKernelPathForTesting(KernelPath::kAuto);
}

// quantize: values += residual, coded, left decoded, residual updated; decode: code -> floats.
void BM_Code(benchmark::State& state, Compression compression, size_t bytes, bool decode) {
  const BlockQuantizer q(compression, 256);
  const size_t count = bytes / sizeof(float);
  std::vector<float> values(count), residual(count, 0.0f);
  for (size_t i = 0; i < count; ++i) values[i] = static_cast<float>(static_cast<int>(i * 2654435761u % 2001) - 1000) / 500;
  std::vector<uint8_t> code(q.EncodedBytes(count));
  q.Quantize(values.data(), residual.data(), count, code.data());
  for (auto _ : state) {
    if (decode) {
      q.Decode(code.data(), count, values.data());
    } else {
      q.Quantize(values.data(), residual.data(), count, code.data());
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void RegisterAll() {
  for (size_t bytes : {256 * kKiB, 64 * kMiB}) {
    const std::string size = SizeName(bytes);
    benchmark::RegisterBenchmark(("memcpy/" + size).c_str(), BM_Memcpy, bytes);
    for (Compression c : {Compression::kBf16, Compression::kInt8, Compression::kInt4, Compression::kTopK}) {
      for (bool decode : {false, true}) {
        const std::string name = std::string(decode ? "decode/" : "quantize/") + CompressionName(c) + "/" + size;
        benchmark::RegisterBenchmark(name.c_str(), BM_Code, c, bytes, decode);
      }
    }
    for (DataType type : {DataType::kFloat32, DataType::kBFloat16, DataType::kFloat16}) {
      const std::string name = std::string(DataTypeName(type)) + "_sum";
      benchmark::RegisterBenchmark(("reduce_into/" + name + "/" + size).c_str(), BM_Sum, type, bytes,
                                   KernelPath::kAuto, true);
      benchmark::RegisterBenchmark(("reduce/" + name + "/" + size).c_str(), BM_Sum, type, bytes,
                                   KernelPath::kAuto, false);
    }
    // The narrower paths, for scale (the auto path is the widest available).
    for (KernelPath path : {KernelPath::kScalar, KernelPath::kAvx2}) {
      for (DataType type : {DataType::kFloat32, DataType::kBFloat16}) {
        const std::string name = std::string(DataTypeName(type)) + "_sum/" + KernelPathName(path);
        benchmark::RegisterBenchmark(("reduce_into/" + name + "/" + size).c_str(), BM_Sum, type, bytes, path,
                                     true);
      }
    }
  }
}

// Prints the usual table and remembers bytes/s per benchmark for the summary.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      auto rate = run.counters.find("bytes_per_second");
      if (run.error_occurred || rate == run.counters.end()) continue;
      bytes_per_second_[run.benchmark_name()] = rate->second.value;
    }
  }

  void PrintSummary() const {
    std::printf("\nRatio to memcpy of the same size (buffer bytes/s; target >= 0.80 at 64MiB for sums):\n");
    for (const auto& [name, rate] : bytes_per_second_) {
      if (name.rfind("memcpy/", 0) == 0) std::printf("  %-40s %6.2f GB/s\n", name.c_str(), rate / 1e9);
    }
    for (const auto& [name, rate] : bytes_per_second_) {
      if (name.rfind("memcpy/", 0) == 0) continue;
      const std::string size = name.substr(name.rfind('/') + 1);
      auto memcpy_rate = bytes_per_second_.find("memcpy/" + size);
      if (memcpy_rate == bytes_per_second_.end() || memcpy_rate->second <= 0) continue;
      std::printf("  %-40s %6.2f GB/s  %5.2fx memcpy\n", name.c_str(), rate / 1e9,
                  rate / memcpy_rate->second);
    }
  }

 private:
  std::map<std::string, double> bytes_per_second_;
};

}  // namespace
}  // namespace silk::kernels

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("Kernel path (auto): %s\n",
              silk::kernels::KernelPathName(silk::kernels::ActiveKernelPath()));
  silk::kernels::RegisterAll();
  silk::kernels::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
