// The quickstart job: every rank joins, sums buffers from 4 KB to 64 MB across
// all ranks, checks every result, and rank 0 prints a short report (mean time
// per call of the slowest rank).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/time/clock.h"
#include "collectives/collectives.h"

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::printf("usage: mpirun -np N silk-demo   (or with MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE)\n"
                "Sums float buffers of 4 KB to 64 MB across the ranks, checks every result,\n"
                "and rank 0 prints time, algbw and busbw per size. No flags; settings come\n"
                "from SILK_* variables (README.md, Configuration).\n");
    return 0;
  }
  auto created = silk::Communicator::CreateDefault();
  if (!created.ok()) {
    std::fprintf(stderr, "silk: cannot join the job: %s\n", std::string(created.status().message()).c_str());
    return 1;
  }
  silk::Communicator& comm = **created;
  const int rank = comm.rank(), size = comm.size();
  if (rank == 0) {
    std::printf("Silk all-reduce demo: %d ranks", size);
    for (const auto& p : comm.placements()) std::printf("%s rank %d on %s", p.rank ? "," : " (", p.rank, p.node.c_str());
    std::printf(")\n%12s %12s %12s %12s %8s\n", "bytes", "time (us)", "algbw GB/s", "busbw GB/s", "check");
  }
  int failures = 0;
  for (size_t bytes : {size_t{4} << 10, size_t{64} << 10, size_t{1} << 20, size_t{16} << 20, size_t{64} << 20}) {
    const size_t count = bytes / sizeof(float);
    std::vector<float> data(count);
    silk::AllreduceOptions options;
    options.input = options.output = data.data();
    options.count = count;
    constexpr int kIterations = 5;
    auto fail = [&](const char* what, const absl::Status& s) {
      std::fprintf(stderr, "rank %d: %s failed: %s\n", rank, what, std::string(s.message()).c_str());
      return 1;
    };
    // One call to warm up, a barrier, then back-to-back calls: each rank's mean,
    // and the slowest rank's is the figure (as allreduce_perf reports), so that
    // a region that started late does not make its own calls look short.
    if (absl::Status s = silk::Allreduce(comm, options); !s.ok()) return fail("all-reduce", s);
    if (absl::Status s = silk::Barrier(comm); !s.ok()) return fail("barrier", s);
    bool correct = true;
    absl::Duration spent;
    for (int it = 0; it < kIterations; ++it) {
      std::fill(data.begin(), data.end(), static_cast<float>(rank + 1));
      absl::Time start = absl::Now();
      if (absl::Status s = silk::Allreduce(comm, options); !s.ok()) return fail("all-reduce", s);
      spent += absl::Now() - start;
      const float expected = size * (size + 1) / 2.0f;
      correct = correct && std::all_of(data.begin(), data.end(), [&](float v) { return v == expected; });
    }
    double seconds = absl::ToDoubleSeconds(spent) / kIterations;
    silk::AllreduceOptions slowest;
    slowest.input = slowest.output = &seconds;
    slowest.count = 1;
    slowest.type = silk::DataType::kFloat64;
    slowest.op = silk::ReduceOp::kMax;
    if (absl::Status s = silk::Allreduce(comm, slowest); !s.ok()) return fail("all-reduce", s);
    failures += correct ? 0 : 1;
    if (rank == 0) {
      double algbw = bytes / seconds / 1e9;
      std::printf("%12zu %12.1f %12.3f %12.3f %8s\n", bytes, seconds * 1e6, algbw, algbw * 2.0 * (size - 1) / size,
                  correct ? "ok" : "WRONG");
    }
  }
  if (rank == 0) std::printf("%s\n", failures == 0 ? "All results correct on rank 0." : "Some results were WRONG.");
  return failures == 0 ? 0 : 2;
}
