// The error paths and the small-message path looped under load, bounded in
// time: a race that shows once in many runs (a frame still arriving for a
// receive that was refused, a lane finishing a message after its collective
// returned) shows here instead of at random in CI. A spinning thread competes
// for the cores while the ranks run; run it under ASan for memory errors.
#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "runtime/core/error.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

constexpr absl::Duration kBudget = absl::Seconds(3);  // per mismatch test: rounds until it is spent
constexpr int kSmallCalls = 600;                       // pairs of small all-reduces per transport

// A thread that keeps one core busy for as long as it lives.
class Load {
 public:
  Load() : thread_([this] {
      while (!stop_.load(std::memory_order_relaxed)) {
      }
    }) {}
  ~Load() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Large, striped messages of different sizes on two of three ranks, with
// receives posted early and late: every rank fails with a mismatch, and no
// byte lands outside a buffer (ASan), however the frames and receives interleave.
void LoopMismatchedCounts(bool shm, int chunk_kib_of_rank_1) {
  Load load;
  const absl::Time end = absl::Now() + kBudget;
  int rounds = 0;
  while (absl::Now() < end || rounds < 3) {
    auto comms = testing::CreateCommunicators(3, [&](int rank) {
      Config config = testing::TestConfig(2, absl::Seconds(20));
      config.shm = shm;
      config.stripe_bytes = 64 << 10;
      if (rank == 1 && chunk_kib_of_rank_1 > 0) config.chunk_bytes = size_t(chunk_kib_of_rank_1) << 10;
      return config;
    });
    ASSERT_TRUE(comms.ok()) << comms.status();
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
      const size_t count = chunk_kib_of_rank_1 > 0 ? (4 << 20) : (comm.rank() == 1 ? (3 << 20) : (2 << 20));
      std::vector<float> data(count, 1.0f);
      if (comm.rank() == 2) absl::SleepFor(absl::Milliseconds(rounds % 3));  // vary who posts first
      absl::Status s = Allreduce(comm, {data.data(), data.data(), count, DataType::kFloat32, ReduceOp::kSum, {}, "ring"});
      if (s.ok()) s = Barrier(comm);
      // Cut differently, the same all-reduce may still be the same messages: then it must be right.
      if (s.ok() && std::any_of(data.begin(), data.end(), [](float v) { return v != 3.0f; })) {
        return absl::InternalError("completed with a wrong sum");
      }
      return s;
    });
    for (int r = 0; r < 3; ++r) {
      if (chunk_kib_of_rank_1 == 0) {
        EXPECT_FALSE(results[r].ok()) << "round " << rounds << " rank " << r;
      }
      EXPECT_NE(KindOf(results[r]), ErrorKind::kTimeout) << results[r];
      EXPECT_NE(KindOf(results[r]), ErrorKind::kInternal) << results[r];
    }
    rounds++;
  }
  ::testing::Test::RecordProperty("rounds", rounds);
}

TEST(Stress, MismatchedCountsOverTcp) { LoopMismatchedCounts(false, 0); }
TEST(Stress, MismatchedCountsOverSharedMemory) { LoopMismatchedCounts(true, 0); }
// One rank with another SILK_CHUNK_BYTES: the same collective, cut differently.
TEST(Stress, DifferentChunkSizeOnOneRank) { LoopMismatchedCounts(false, 256); }

// Many small ring all-reduces back to back, sync and async: every result exact.
TEST(Stress, ManySmallRingAllreduces) {
  Load load;
  for (bool shm : {false, true}) {
    Config config = testing::TestConfig(2, absl::Seconds(20));
    config.shm = shm;
    absl::Status status = testing::RunRanks(3, config, [](Communicator& comm) -> absl::Status {
      // A count, not a clock: ranks that stopped at different calls would wait on each other.
      for (int i = 0; i < kSmallCalls; ++i) {
        const size_t count = 1 + i % 37;
        std::vector<int32_t> a(count, comm.rank() + i), b(count, 1);
        auto first = AllreduceAsync(comm, {a.data(), a.data(), count, DataType::kInt32, ReduceOp::kSum, {}, "ring"});
        if (!first.ok()) return first.status();
        if (absl::Status s = Allreduce(comm, {b.data(), b.data(), count, DataType::kInt32, ReduceOp::kSum, {}, "ring"});
            !s.ok()) {
          return s;
        }
        if (absl::Status s = (*first)->Wait(); !s.ok()) return s;
        const int32_t expected = 3 * i + 3;  // ranks 0+1+2, plus i on each
        for (size_t k = 0; k < count; ++k) {
          if (a[k] != expected || b[k] != 3) return absl::InternalError("wrong sum in the small all-reduces");
        }
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << (shm ? "shm: " : "tcp: ") << status;
  }
}

}  // namespace
}  // namespace silk
