// Every collective x element type x reduction x {out of place, in place} x
// algorithm, at world sizes 1, 2, 3, 4 and 7 and counts 0, 1, 7, n-1, n+1 and
// a large one, on in-process ranks over real loopback TCP. Each rank checks its
// own output against a reference computed without the library, checks that an
// out-of-place input was left alone, and hashes what it holds so that ranks
// that should hold the same bits are compared.
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "tests/collectives/suite_cases.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

using testing::Case;
using testing::CasesFor;
using testing::Op;
using testing::OpName;
using testing::RunCase;

// Large enough for several pipeline chunks (the suite's chunk is 4 KiB).
constexpr size_t kLargeCount = 9000;

// Runs `cases` in order on every rank; a rank that fails aborts the others at
// once instead of leaving them waiting. hashes[rank][k] receives case k's hash.
std::vector<absl::Status> RunCasesOnEveryRank(std::vector<std::unique_ptr<Communicator>>& comms,
                                              const std::vector<Case>& cases,
                                              std::vector<std::vector<uint64_t>>& hashes) {
  hashes.assign(comms.size(), std::vector<uint64_t>(cases.size()));
  return testing::RunOnRanks(comms, [&](Communicator& comm) -> absl::Status {
    for (size_t k = 0; k < cases.size(); ++k) {
      absl::Status s = RunCase(comm, cases[k], &hashes[comm.rank()][k]);
      if (!s.ok()) {
        comm.Abort(s);
        return s;
      }
    }
    return absl::OkStatus();
  });
}

// How the ranks exchange: over real sockets, or through shared memory with
// the calling-thread path for small calls (shared memory without it is
// suite_check's, under mpirun).
enum class Path { kTcp, kFastPath };

class Suite : public ::testing::TestWithParam<std::tuple<Op, int, Path>> {};

TEST_P(Suite, MatchesReferenceAndRanksAgree) {
  const auto [op, n, path] = GetParam();
  Config config = testing::TestConfig(2, absl::Seconds(60));
  config.chunk_bytes = 4 << 10;  // several pipeline chunks even for the suite's sizes
  config.shm = path == Path::kFastPath;
  config.fast_path = path == Path::kFastPath;
  auto comms = testing::CreateCommunicators(n, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const std::vector<Case> cases =
      CasesFor(op, n, {0, 1, 7, static_cast<size_t>(n - 1), static_cast<size_t>(n + 1), kLargeCount});
  std::vector<std::vector<uint64_t>> hashes;
  auto results = RunCasesOnEveryRank(*comms, cases, hashes);
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  for (size_t k = 0; k < cases.size(); ++k) {
    for (int r = 1; r < n; ++r) {
      ASSERT_EQ(hashes[r][k], hashes[0][k]) << "rank " << r << " holds other bits than rank 0: " << cases[k].Describe();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Collectives, Suite,
                         ::testing::Combine(::testing::Values(Op::kAllreduce, Op::kReduceScatter, Op::kReduce,
                                                              Op::kAllgather, Op::kAllgatherv, Op::kBroadcast,
                                                              Op::kAlltoall),
                                            ::testing::Values(1, 2, 3, 4, 7),
                                            ::testing::Values(Path::kTcp, Path::kFastPath)),
                         [](const auto& info) {
                           return absl::StrFormat("%s_ranks%d%s", OpName(std::get<0>(info.param)),
                                                  std::get<1>(info.param),
                                                  std::get<2>(info.param) == Path::kTcp ? "" : "_fast_path");
                         });

// Fewer elements than ranks leave some ring steps with nothing to send on some
// ranks; the reduce-scatter's forward buffers must still wait for the last
// send that read them (it once waited only for the step before, and a slow
// progress thread then sent a partial that had been overwritten). The race
// needs a send that is late by three steps, so this runs many small calls.
TEST(Ring, FewerElementsThanRanksOverManyCalls) {
  const int n = 7;
  Config config = testing::TestConfig(2, absl::Seconds(60));
  config.shm = false;
  auto comms = testing::CreateCommunicators(n, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  std::vector<Case> cases;
  uint64_t seed = 1;
  for (int round = 0; round < 150; ++round) {
    for (size_t count = 1; count < static_cast<size_t>(n); ++count) {
      for (DataType type : {DataType::kInt8, DataType::kBFloat16}) {
        cases.push_back(Case{Op::kAllreduce, type, ReduceOp::kSum, round % 2 == 1, count, "ring", 0, seed++});
      }
    }
  }
  std::vector<std::vector<uint64_t>> hashes;
  auto results = RunCasesOnEveryRank(*comms, cases, hashes);
  for (int r = 0; r < n; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

TEST(Barrier, NoRankLeavesBeforeEveryRankArrived) {
  for (int n : {1, 2, 3, 4, 7}) {
   for (bool fast_path : {false, true}) {
    SCOPED_TRACE(fast_path ? "fast path" : "no fast path");
    Config config = testing::TestConfig();
    config.fast_path = fast_path;
    auto comms = testing::CreateCommunicators(n, config);
    ASSERT_TRUE(comms.ok()) << comms.status();
    std::atomic<int> arrived{0};
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      for (int round = 1; round <= 20; ++round) {
        // The last rank is slow to arrive; nobody may pass the barrier before it.
        if (comm.rank() == n - 1) absl::SleepFor(absl::Milliseconds(round == 1 ? 50 : 1));
        arrived.fetch_add(1);
        if (absl::Status s = Barrier(comm); !s.ok()) return s;
        if (arrived.load() < round * n) {
          return absl::InternalError(absl::StrFormat("rank %d left barrier %d after only %d arrivals", comm.rank(),
                                                     round, arrived.load() - (round - 1) * n));
        }
        // A second barrier keeps the next round's arrivals out of this round's count.
        if (absl::Status s = Barrier(comm); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    for (int r = 0; r < n; ++r) EXPECT_TRUE(results[r].ok()) << "ranks " << n << ", rank " << r << ": " << results[r];
   }
  }
}

}  // namespace
}  // namespace silk
