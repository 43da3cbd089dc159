// A rank of a multi-process check: joins the job (MPI under mpirun, the
// torchrun variables otherwise), runs all-reduces of several sizes, checks the
// values against the formula and that every rank holds the same bits.
//
//   collective_check [--counts 0,1,1000,...] [--die-rank R] [--env KEY=VALUE]
//                    [--rank-env R KEY=VALUE] [--expect-startup-failure TEXT --within SECONDS]
//
// With --die-rank, rank R exits abruptly in the middle of an all-reduce; every
// other rank must report an error naming it, within the timeout, and exit 3.
// --rank-env sets a variable on rank R only (RANK, or OpenMPI's rank under
// mpirun). With --expect-startup-failure, joining must fail within SECONDS
// with an error containing TEXT; the rank then prints "OK startup failure"
// and exits 0 (so mpirun's status says whether every rank saw it).
// Exit codes: 0 all correct, 3 the expected failure was seen, 1 anything else.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/strings/str_split.h"
#include "collectives/collectives.h"

namespace {

// FNV-1a: the same on every process (absl::Hash is seeded per process).
int64_t Fnv1a(const void* data, size_t bytes) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < bytes; ++i) h = (h ^ static_cast<const unsigned char*>(data)[i]) * 1099511628211ull;
  return static_cast<int64_t>(h >> 1);
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  return 1;
}

// This process's rank before it joins: torchrun's RANK, or mpirun's.
int LaunchRank() {
  for (const char* name : {"RANK", "OMPI_COMM_WORLD_RANK"}) {
    int rank;
    if (const char* v = std::getenv(name); v != nullptr && absl::SimpleAtoi(v, &rank)) return rank;
  }
  return -1;
}

bool SetEnv(const std::string& kv) {
  size_t eq = kv.find('=');
  if (eq == std::string::npos) return false;
  setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> counts = {0, 1, 3, 1000, 65537, 1 << 20};
  int die_rank = -1;
  std::string expected_failure;
  double within_s = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--counts" && i + 1 < argc) {
      counts.clear();
      for (auto piece : absl::StrSplit(argv[++i], ',')) {
        size_t c;
        if (!absl::SimpleAtoi(piece, &c)) return Fail("bad --counts");
        counts.push_back(c);
      }
    } else if (arg == "--env" && i + 1 < argc) {  // KEY=VALUE, set before joining
      if (!SetEnv(argv[++i])) return Fail("bad --env");
    } else if (arg == "--rank-env" && i + 2 < argc) {
      int only;
      if (!absl::SimpleAtoi(argv[++i], &only)) return Fail("bad --rank-env");
      std::string kv = argv[++i];
      if (only == LaunchRank() && !SetEnv(kv)) return Fail("bad --rank-env");
    } else if (arg == "--expect-startup-failure" && i + 1 < argc) {
      expected_failure = argv[++i];
    } else if (arg == "--within" && i + 1 < argc) {
      if (!absl::SimpleAtod(argv[++i], &within_s)) return Fail("bad --within");
    } else if (arg == "--die-rank" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &die_rank)) return Fail("bad --die-rank");
    } else {
      return Fail("unknown argument " + arg);
    }
  }
  const absl::Time start = absl::Now();
  auto created = silk::Communicator::CreateDefault();
  if (!expected_failure.empty()) {
    const double took = absl::ToDoubleSeconds(absl::Now() - start);
    if (created.ok()) return Fail("joined, but a start-up failure was expected");
    const std::string message(created.status().message());
    std::printf("rank %d: start-up failed after %.2f s: %s\n", LaunchRank(), took, message.c_str());
    if (!absl::StrContains(message, expected_failure)) return Fail("the error lacks \"" + expected_failure + "\"");
    if (within_s > 0 && took > within_s) return Fail("the failure took longer than --within");
    std::printf("OK startup failure\n");
    return 0;
  }
  if (!created.ok()) return Fail(std::string(created.status().message()));
  silk::Communicator& comm = **created;
  const int rank = comm.rank(), size = comm.size();

  if (die_rank >= 0) {
    std::vector<float> big(8 << 20, 1.0f);
    silk::AllreduceOptions options;
    options.input = options.output = big.data();
    options.count = big.size();
    auto work = silk::AllreduceAsync(comm, options);
    if (rank == die_rank) {
      usleep(20000);  // be in the middle of the operation
      std::fprintf(stderr, "rank %d exiting abruptly\n", rank);
      _exit(9);
    }
    absl::Status status = work.ok() ? (*work)->Wait() : work.status();
    if (status.ok()) return Fail("the all-reduce succeeded although a rank died");
    std::printf("rank %d detected the failure: %s\n", rank, std::string(status.message()).c_str());
    std::fflush(stdout);
    _exit(3);  // skip orderly teardown: the job is broken
  }

  for (size_t count : counts) {
    std::vector<float> data(count);
    for (size_t i = 0; i < count; ++i) data[i] = static_cast<float>((i % 1000) * 0.001 + rank);
    silk::AllreduceOptions options;
    options.input = options.output = data.data();
    options.count = count;
    if (absl::Status s = silk::Allreduce(comm, options); !s.ok()) return Fail(std::string(s.message()));
    for (size_t i = 0; i < count; ++i) {
      double expected = (i % 1000) * 0.001 * size + size * (size - 1) / 2.0;
      if (std::abs(data[i] - expected) > 1e-3 * std::max(1.0, expected)) {
        return Fail("wrong value at " + std::to_string(i) + " for count " + std::to_string(count));
      }
    }
    // Same bits everywhere: the min and max of every rank's hash agree.
    int64_t hash = Fnv1a(data.data(), count * sizeof(float));
    int64_t lo = hash, hi = hash;
    silk::AllreduceOptions h;
    h.type = silk::DataType::kInt64;
    h.count = 1;
    h.op = silk::ReduceOp::kMin;
    h.input = h.output = &lo;
    if (absl::Status s = silk::Allreduce(comm, h); !s.ok()) return Fail(std::string(s.message()));
    h.op = silk::ReduceOp::kMax;
    h.input = h.output = &hi;
    if (absl::Status s = silk::Allreduce(comm, h); !s.ok()) return Fail(std::string(s.message()));
    if (lo != hi) return Fail("ranks hold different bits for count " + std::to_string(count));
  }
  std::printf("OK rank %d/%d node %s local_rank %d\n", rank, size, comm.node().c_str(), comm.local_rank());
  return 0;
}
