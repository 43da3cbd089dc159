// A fixed loop of all-reduces whose every result is checked bit for bit, with
// the time each one ended: the load cluster/bench-faults cuts the WAN under.
//
//   allreduce_loop [--iters N] [--bytes S] [--json PATH]
//
// Inputs are small integers in float32, so every sum is exact and known in
// advance; rank 0 writes one JSON line per iteration ({"iter", "end", "ok"},
// `end` in seconds since the epoch) and a last line with the totals.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"

namespace {

struct Flags {
  int iters = 200;
  size_t bytes = 4 << 20;
  std::string json;
};

bool Parse(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: allreduce_loop [--iters N] [--bytes S] [--json PATH]\n"
                  "  --iters N   all-reduces to run (default 200)\n"
                  "  --bytes S   bytes per rank, float32 (default 4194304)\n"
                  "  --json PATH rank 0 writes one line per iteration: iter, end (s since the epoch), ok\n");
      std::exit(0);
    }
    if (value == nullptr) return false;
    if (arg == "--iters") {
      flags->iters = std::atoi(value);
    } else if (arg == "--bytes") {
      flags->bytes = std::strtoull(value, nullptr, 10);
    } else if (arg == "--json") {
      flags->json = value;
    } else {
      return false;
    }
    ++i;
  }
  return flags->iters > 0 && flags->bytes >= sizeof(float);
}

// Small integers: their float sums are exact whatever the order.
float Input(int rank, int iter, size_t i) { return static_cast<float>((rank * 7 + iter * 3 + i) % 64); }

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!Parse(argc, argv, &flags)) {
    std::fprintf(stderr, "allreduce_loop: bad arguments (see --help)\n");
    return 2;
  }
  auto comm = silk::Communicator::CreateDefault();
  if (!comm.ok()) {
    std::fprintf(stderr, "allreduce_loop: %s\n", std::string(comm.status().message()).c_str());
    return 1;
  }
  const int rank = (*comm)->rank(), size = (*comm)->size();
  const size_t count = flags.bytes / sizeof(float);
  std::vector<float> in(count), out(count);
  FILE* json = nullptr;
  if (rank == 0 && !flags.json.empty() && (json = std::fopen(flags.json.c_str(), "w")) == nullptr) {
    std::fprintf(stderr, "allreduce_loop: cannot write %s\n", flags.json.c_str());
    return 1;
  }
  int wrong = 0;
  const absl::Time start = absl::Now();
  for (int iter = 0; iter < flags.iters; ++iter) {
    for (size_t i = 0; i < count; ++i) in[i] = Input(rank, iter, i);
    silk::AllreduceOptions options;
    options.input = in.data();
    options.output = out.data();
    options.count = count;
    absl::Status status = silk::Allreduce(**comm, options);
    if (!status.ok()) {
      std::fprintf(stderr, "allreduce_loop: rank %d, iteration %d: %s\n", rank, iter,
                   std::string(status.message()).c_str());
      if (json) std::fclose(json);
      return 1;
    }
    bool ok = true;
    for (size_t i = 0; i < count && ok; ++i) {
      float expected = 0;
      for (int r = 0; r < size; ++r) expected += Input(r, iter, i);
      ok = std::memcmp(&expected, &out[i], sizeof(float)) == 0;
    }
    wrong += ok ? 0 : 1;
    if (json) {
      std::fprintf(json, "{\"iter\": %d, \"end\": %.6f, \"ok\": %s}\n", iter, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()),
                   ok ? "true" : "false");
      std::fflush(json);
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (json) {
    std::fprintf(json, "{\"done\": true, \"seconds\": %.3f, \"wrong\": %d}\n", seconds, wrong);
    std::fclose(json);
  }
  if (rank == 0) std::printf("allreduce_loop: %d all-reduces of %zu bytes on %d ranks in %.2f s, %d wrong\n",
                             flags.iters, flags.bytes, size, seconds, wrong);
  return wrong == 0 ? 0 : 3;
}
