// Ranks that make different calls (operation, count, type, reduction, root,
// algorithm, allgatherv counts, or order) must all fail, promptly, with a
// message that says what differed; nothing may hang or be corrupted. A rank
// whose part of the operation needed nothing from the disagreeing ranks may
// finish that call: it then fails its next one (the communicator is aborted).
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

constexpr int kRanks = 4;

// Runs `call` on every rank (each gets its rank), then a barrier on the ranks
// whose call succeeded; every rank must end with an error that contains all of
// `expected` (each rank sees the message of the rank that noticed, quoted).
void ExpectEveryRankFailsOn(const std::function<Config(int rank)>& config,
                            const std::function<absl::Status(Communicator&, int rank)>& call,
                            const std::vector<std::string>& expected) {
  auto comms = testing::CreateCommunicators(kRanks, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const absl::Time start = absl::Now();
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
    absl::Status s = call(comm, comm.rank());
    if (s.ok()) s = Barrier(comm);
    return s;
  });
  // Well inside the 20 s operation timeout: the mismatch was noticed, not timed out.
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_FALSE(results[r].ok()) << "rank " << r << " did not fail";
    EXPECT_FALSE(absl::IsDeadlineExceeded(results[r])) << "rank " << r << ": " << results[r];
    for (const std::string& text : expected) {
      EXPECT_NE(results[r].message().find(text), std::string::npos)
          << "rank " << r << "'s error lacks \"" << text << "\": " << results[r];
    }
    // The failure is sticky: the communicator refuses further work.
    EXPECT_FALSE((*comms)[r]->status().ok());
  }
}

// Over TCP, over shared memory, over shared memory with the calling-thread
// path for small calls off, and in two regions on one node (whose node phases
// take the slots): each compares descriptors.
void ExpectEveryRankFails(const std::function<absl::Status(Communicator&, int rank)>& call,
                          const std::vector<std::string>& expected) {
  const char* paths[] = {"tcp", "shared memory, no fast path", "shared memory, fast path",
                         "two regions, shared memory, fast path"};
  for (int path : {0, 1, 2, 3}) {
    SCOPED_TRACE(paths[path]);
    ExpectEveryRankFailsOn(
        [path](int rank) {
          Config config = testing::TestConfig(2, absl::Seconds(20));
          config.shm = path > 0;
          config.fast_path = path != 1;
          if (path == 3) {
            config.region = rank < kRanks / 2 ? "east" : "west";
            config.node_slots = true;
          }
          return config;
        },
        call, expected);
  }
}

absl::Status FloatAllreduce(Communicator& comm, size_t count, ReduceOp op = ReduceOp::kSum,
                            const std::string& algorithm = "") {
  std::vector<float> data(count, 1.0f);
  return Allreduce(comm, {data.data(), data.data(), count, DataType::kFloat32, op, {}, algorithm});
}

absl::Status FloatBroadcast(Communicator& comm, size_t count, int root) {
  std::vector<float> data(count, 2.0f);
  return Broadcast(comm, {data.data(), data.data(), count, DataType::kFloat32, root, {}, ""});
}

TEST(Mismatch, DifferentOperations) {
  ExpectEveryRankFails(
      [](Communicator& comm, int rank) { return rank == 2 ? FloatBroadcast(comm, 64, 0) : FloatAllreduce(comm, 64); },
      {"mismatched", "allreduce(count=64", "broadcast(count=64"});
}

// A call refused on one rank (a null buffer) takes its operation number there
// too: the others' matching call fails, and never pairs with that rank's next.
TEST(Mismatch, CallRejectedOnOneRankFailsOnEveryRank) {
  ExpectEveryRankFails(
      [](Communicator& comm, int rank) {
        if (rank == 0) {
          absl::Status refused = Allreduce(comm, {nullptr, nullptr, 64, DataType::kFloat32, ReduceOp::kSum, {}, ""});
          if (!absl::IsInvalidArgument(refused)) return absl::InternalError("the null input was not refused");
        }
        absl::Status first = FloatAllreduce(comm, 64);
        return first.ok() ? FloatAllreduce(comm, 64) : first;
      },
      {"mismatched", "allreduce (rejected by its rank)", "allreduce(count=64"});
}

TEST(Mismatch, DifferentCounts) {
  ExpectEveryRankFails([](Communicator& comm, int rank) { return FloatAllreduce(comm, rank == 1 ? 200 : 100); },
                       {"mismatched", "count=200", "count=100"});
}

// One rank's call fits a shared-memory slot, another's goes through the
// transport: the slot's waiter must hear of the other call, not time out.
TEST(Mismatch, SmallCountAgainstLargeCount) {
  ExpectEveryRankFails([](Communicator& comm, int rank) { return FloatAllreduce(comm, rank == 1 ? 100000 : 100); },
                       {"mismatched", "count=100000", "count=100"});
}

TEST(Mismatch, DifferentTypesOfTheSameSize) {
  ExpectEveryRankFails(
      [](Communicator& comm, int rank) {
        std::vector<int32_t> data(100, 1);
        const DataType type = rank == 3 ? DataType::kInt32 : DataType::kFloat32;
        return Allreduce(comm, {data.data(), data.data(), data.size(), type, ReduceOp::kSum, {}, ""});
      },
      {"mismatched", "type=int32", "type=float32"});
}

TEST(Mismatch, DifferentReductions) {
  ExpectEveryRankFails([](Communicator& comm,
                          int rank) { return FloatAllreduce(comm, 100, rank == 0 ? ReduceOp::kMax : ReduceOp::kSum); },
                       {"mismatched", "op=max", "op=sum"});
}

TEST(Mismatch, BroadcastRootsWhereEachRankThinksItIsTheRoot) {
  // Ranks 0 and 2 each believe they are the root: neither expects anything,
  // so only the neighbour check can notice.
  ExpectEveryRankFails([](Communicator& comm, int rank) { return FloatBroadcast(comm, 16, rank < 2 ? 0 : 2); },
                       {"mismatched", "root=0", "root=2"});
}

TEST(Mismatch, ReduceRoots) {
  ExpectEveryRankFails(
      [](Communicator& comm, int rank) {
        std::vector<float> in(50, 1.0f), out(50);
        const int root = rank == 1 ? 1 : 3;
        return Reduce(comm, {in.data(), out.data(), in.size(), DataType::kFloat32, ReduceOp::kSum, root, {}, ""});
      },
      {"mismatched", "root=1", "root=3"});
}

TEST(Mismatch, DifferentOrder) {
  ExpectEveryRankFails(
      [](Communicator& comm, int rank) -> absl::Status {
        if (rank == 1) {
          if (absl::Status s = FloatBroadcast(comm, 32, 0); !s.ok()) return s;
          return FloatAllreduce(comm, 32);
        }
        if (absl::Status s = FloatAllreduce(comm, 32); !s.ok()) return s;
        return FloatBroadcast(comm, 32, 0);
      },
      {"mismatched", "allreduce(count=32", "broadcast(count=32"});
}

TEST(Mismatch, BarrierAgainstBroadcast) {
  ExpectEveryRankFails(
      [](Communicator& comm, int rank) { return rank == 0 ? Barrier(comm) : FloatBroadcast(comm, 8, 0); },
      {"mismatched", "barrier", "broadcast"});
}

TEST(Mismatch, DifferentAlgorithms) {
  // Both algorithms would move the same number of bytes in some messages; the
  // algorithm travels in the descriptor so they are never mixed up.
  ExpectEveryRankFails([](Communicator& comm,
                          int rank) { return FloatAllreduce(comm, 4000, ReduceOp::kSum, rank == 2 ? "rhd" : "ring"); },
                       {"mismatched", "allreduce(count=4000"});
}

TEST(Mismatch, AllgathervCountsWithTheSameTotal) {
  for (const std::string algorithm : {"ring", "rhd"}) {
    SCOPED_TRACE(algorithm);
    ExpectEveryRankFails(
        [&](Communicator& comm, int rank) {
          std::vector<size_t> counts = {3, 3, 3, 3};
          if (rank == 2) counts = {3, 2, 4, 3};  // same total, other layout
          std::vector<float> in(counts[rank], 1.0f), out(12);
          return Allgatherv(comm, {in.data(), out.data(), counts, DataType::kFloat32, {}, algorithm});
        },
        {"mismatched allgatherv arguments", "counts[1]="});
  }
}

TEST(Mismatch, ReduceScatterCounts) {
  ExpectEveryRankFails(
      [](Communicator& comm, int rank) {
        const size_t count = rank == 3 ? 6 : 5;
        std::vector<float> in(count * kRanks, 1.0f), out(count);
        return ReduceScatter(comm, {in.data(), out.data(), count, DataType::kFloat32, ReduceOp::kSum, {}, ""});
      },
      {"mismatched", "reduce_scatter(count=6", "reduce_scatter(count=5"});
}

}  // namespace
}  // namespace silk
