// Faults on the calling-thread path for small collectives (shared-memory
// slots, collectives/algorithms/shared_slots.h), each checked with the path on
// and off (SILK_FAST_PATH): a rank that never comes makes every other rank
// time out naming it; a rank that dies while the others wait for it makes
// every one of them fail, naming it, long before the timeout; asynchronous
// calls keep their order with blocking ones.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "collectives/algorithms/shared_slots.h"
#include "runtime/core/error.h"
#include "tests/collectives/suite_cases.h"
#include "tests/support/processes.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

class FastPath : public ::testing::TestWithParam<bool> {
 protected:
  Config MakeConfig(absl::Duration timeout) const {
    Config config = testing::TestConfig(2, timeout);
    config.shm = true;
    config.fast_path = GetParam();
    return config;
  }
};

absl::Status SmallAllreduce(Communicator& comm, float* value) {
  return Allreduce(comm, {value, value, 1, DataType::kFloat32, ReduceOp::kSum, {}, ""});
}

TEST_P(FastPath, ARankThatNeverComesTimesOutEveryOtherRankNamingIt) {
  constexpr int kRanks = 4, kLate = 3;
  auto comms = testing::CreateCommunicators(kRanks, MakeConfig(absl::Seconds(2)));
  ASSERT_TRUE(comms.ok()) << comms.status();
  const absl::Time start = absl::Now();
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    float value = 1;
    if (absl::Status s = SmallAllreduce(comm, &value); !s.ok()) return s;  // all ranks: fine
    if (comm.rank() == kLate) {
      // Comes only after the others gave up: its call must fail, not pair with theirs.
      while (comm.status().ok() && absl::Now() - start < absl::Seconds(10)) absl::SleepFor(absl::Milliseconds(5));
    }
    return SmallAllreduce(comm, &value);
  });
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_FALSE(results[r].ok()) << "rank " << r;
    if (r == kLate) continue;
    EXPECT_NE(results[r].message().find("timed out"), std::string::npos) << "rank " << r << ": " << results[r];
    // Through the transport a rank names the peer it waited for, which may be
    // one waiting itself; in the slots every rank waits for the late one.
    if (!GetParam()) continue;
    EXPECT_NE(results[r].message().find(absl::StrFormat("rank %d", kLate)), std::string::npos)
        << "rank " << r << ": " << results[r];
  }
}

TEST_P(FastPath, AsyncAndBlockingCallsKeepTheirOrder) {
  constexpr int kRanks = 3, kCalls = 200;
  auto comms = testing::CreateCommunicators(kRanks, MakeConfig(absl::Seconds(30)));
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    std::vector<float> values(kCalls);
    std::vector<WorkPtr> works;
    for (int i = 0; i < kCalls; ++i) {
      values[i] = static_cast<float>(i + comm.rank());
      AllreduceOptions o{&values[i], &values[i], 1, DataType::kFloat32, ReduceOp::kSum, {}, ""};
      // Every third call blocks, behind whatever async calls are still queued.
      if (i % 3 == comm.rank() % 3) {
        if (absl::Status s = Allreduce(comm, o); !s.ok()) return s;
      } else {
        absl::StatusOr<WorkPtr> work = AllreduceAsync(comm, o);
        if (!work.ok()) return work.status();
        works.push_back(*work);
      }
    }
    for (const WorkPtr& w : works) {
      if (absl::Status s = w->Wait(); !s.ok()) return s;
    }
    for (int i = 0; i < kCalls; ++i) {
      const float expected = static_cast<float>(kRanks * i + kRanks * (kRanks - 1) / 2);
      if (values[i] != expected) return absl::InternalError(absl::StrFormat("call %d: %g, not %g", i, values[i], expected));
    }
    return absl::OkStatus();
  });
  for (int r = 0; r < kRanks; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

// Also in two regions of two ranks, whose node phases wait in the slots:
// the dying rank's region partner waits for it there, the other region for
// its partial sums.
TEST_P(FastPath, APeerDyingWhileOthersWaitFailsEveryRankNamingIt) {
  constexpr int kRanks = 4, kDying = 2;
  for (int regions : {1, 2}) {
    SCOPED_TRACE(absl::StrFormat("%d regions", regions));
    std::map<int, std::vector<std::string>> region_args;
    for (int r = 0; r < kRanks && regions == 2; ++r) region_args[r] = {"--region", r < kRanks / 2 ? "east" : "west"};
    const absl::Time start = absl::Now();
    auto results = testing::LaunchRanks(SILK_FAST_PATH_CHECK, {"--die-rank", std::to_string(kDying)}, kRanks,
                                        absl::Seconds(90),
                                        {{"SILK_TIMEOUT", "30s"},
                                         {"SILK_FAST_PATH", GetParam() ? "1" : "0"},
                                         {"SILK_NODE_SLOTS", "1"}},
                                        region_args);
    ASSERT_EQ(results.size(), static_cast<size_t>(kRanks));
    EXPECT_EQ(results[kDying].exit_code, 9) << results[kDying].output;
    for (int r = 0; r < kRanks; ++r) {
      if (r == kDying) continue;
      EXPECT_EQ(results[r].exit_code, 3) << "rank " << r << " output:\n" << results[r].output;
      EXPECT_NE(results[r].output.find(absl::StrFormat("rank %d", kDying)), std::string::npos)
          << "rank " << r << ":\n" << results[r].output;
    }
    // Noticed by the shared-memory transport, not by the 30 s timeout.
    EXPECT_LT(absl::Now() - start, absl::Seconds(25));
  }
}

// Around the sizes where the slots switch from one step to two, where the
// two steps go chunk by chunk, and where a call stops fitting them: each
// rank's result against a reference computed without the library, and the
// same bits on every rank.
TEST_P(FastPath, AllreduceAroundTheTwoStepAndCapacitySizesMatchesAndRanksAgree) {
  constexpr size_t kTwoStepFloats = algorithms::kSlotsTwoStepBytes / sizeof(float);
  for (int n : {2, 3, 4}) {
    SCOPED_TRACE(absl::StrFormat("%d ranks", n));
    auto comms = testing::CreateCommunicators(n, MakeConfig(absl::Seconds(60)));
    ASSERT_TRUE(comms.ok()) << comms.status();
    const size_t fits = static_cast<size_t>(n) * (256 << 10) / sizeof(float);  // every share fills a slot
    std::vector<testing::Case> cases;
    uint64_t seed = 7;
    for (size_t count : std::vector<size_t>{kTwoStepFloats - 1, kTwoStepFloats, kTwoStepFloats + n + 1,
                                            size_t{256 << 10} / 4 + 3, fits, fits + 1, 3 * fits + n + 1}) {
      cases.push_back({testing::Op::kAllreduce, DataType::kFloat32, ReduceOp::kSum, false, count, "", 0, seed++});
      cases.push_back({testing::Op::kAllreduce, DataType::kFloat32, ReduceOp::kAvg, true, count, "", 0, seed++});
      cases.push_back({testing::Op::kAllreduce, DataType::kBFloat16, ReduceOp::kSum, true, count * 2, "", 0, seed++});
      cases.push_back({testing::Op::kAllreduce, DataType::kInt32, ReduceOp::kMax, false, count, "", 0, seed++});
    }
    // On 2 ranks the largest call fills every step an operation has.
    for (size_t count : {algorithms::kSlotsLargestBytes / sizeof(float), algorithms::kSlotsLargestBytes / sizeof(float) + 1}) {
      if (n == 2) cases.push_back({testing::Op::kAllreduce, DataType::kFloat32, ReduceOp::kSum, true, count, "", 0, seed++});
    }
    std::vector<std::vector<uint64_t>> hashes(n, std::vector<uint64_t>(cases.size()));
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      for (size_t k = 0; k < cases.size(); ++k) {
        if (absl::Status s = testing::RunCase(comm, cases[k], &hashes[comm.rank()][k]); !s.ok()) {
          comm.Abort(s);
          return s;
        }
      }
      return absl::OkStatus();
    });
    for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    for (size_t k = 0; k < cases.size(); ++k) {
      for (int r = 1; r < n; ++r) EXPECT_EQ(hashes[r][k], hashes[0][k]) << "rank " << r << ": " << cases[k].Describe();
    }
  }
}

// All-gather, reduce-scatter, all-to-all and reduce on the slots: one chunk, a block
// that just fills a slot, and chunked blocks, in place and not, checked
// against the expected values (RunCase) whichever way they went.
TEST_P(FastPath, BlockCollectivesAroundTheSlotSizeAreRight) {
  const size_t slot_floats = (256 << 10) / sizeof(float);
  for (int n : {2, 3, 4}) {
    SCOPED_TRACE(absl::StrFormat("%d ranks", n));
    auto comms = testing::CreateCommunicators(n, MakeConfig(absl::Seconds(60)));
    ASSERT_TRUE(comms.ok()) << comms.status();
    std::vector<testing::Case> cases;
    uint64_t seed = 11;
    for (testing::Op op :
         {testing::Op::kAllgather, testing::Op::kReduceScatter, testing::Op::kAlltoall, testing::Op::kReduce}) {
      for (size_t count : std::vector<size_t>{0, 1, 7, slot_floats, slot_floats + 1, 2 * slot_floats + 5}) {
        for (bool in_place : {false, true}) {
          cases.push_back({op, DataType::kFloat32, ReduceOp::kSum, in_place, count, "", n - 1, seed++});
        }
      }
      cases.push_back({op, DataType::kBFloat16, ReduceOp::kAvg, true, slot_floats * 2 + 3, "", 0, seed++});
      cases.push_back({op, DataType::kInt64, ReduceOp::kMax, false, slot_floats / 2 + 1, "", 0, seed++});
    }
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      for (const testing::Case& c : cases) {
        uint64_t hash = 0;
        if (absl::Status s = testing::RunCase(comm, c, &hash); !s.ok()) {
          comm.Abort(s);
          return s;
        }
      }
      return absl::OkStatus();
    });
    for (int r = 0; r < n; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  }
}

// Block collectives whose sizes differ fail on every rank with the mismatch.
TEST_P(FastPath, MismatchedBlockCollectivesFailEveryRank) {
  constexpr int kRanks = 3;
  for (size_t base : {size_t{100}, size_t{200000}}) {
    SCOPED_TRACE(absl::StrFormat("%d values", base));
    auto comms = testing::CreateCommunicators(kRanks, MakeConfig(absl::Seconds(20)));
    ASSERT_TRUE(comms.ok()) << comms.status();
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      const size_t count = base + (comm.rank() == 1 ? 3 : 0);
      std::vector<float> in(count * kRanks, 1.0f), out(count * kRanks);
      return Alltoall(comm, {in.data(), out.data(), count, DataType::kFloat32, {}, ""});
    });
    for (int r = 0; r < kRanks; ++r) {
      EXPECT_EQ(KindOf(results[r]), ErrorKind::kMismatch) << "rank " << r << ": " << results[r];
    }
  }
}

// Two-step calls that differ in size, in one chunk or several, fail on every
// rank with the mismatch, never pairing one rank's shares with another call's.
TEST_P(FastPath, MismatchedTwoStepCallsFailEveryRank) {
  constexpr int kRanks = 3;
  for (size_t base : {algorithms::kSlotsTwoStepBytes / sizeof(float) * 2, size_t{3} << 20}) {
    SCOPED_TRACE(absl::StrFormat("%d values", base));
    auto comms = testing::CreateCommunicators(kRanks, MakeConfig(absl::Seconds(20)));
    ASSERT_TRUE(comms.ok()) << comms.status();
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      const size_t count = base + (comm.rank() == 1 ? 3 : 0);
      std::vector<float> values(count, 1.0f);
      return Allreduce(comm, {values.data(), values.data(), count, DataType::kFloat32, ReduceOp::kSum, {}, ""});
    });
    for (int r = 0; r < kRanks; ++r) {
      EXPECT_EQ(KindOf(results[r]), ErrorKind::kMismatch) << "rank " << r << ": " << results[r];
    }
  }
}

// The node tier's byte counters see a call's bytes whichever way it went:
// through the slots, each rank publishes its input to every peer and reads
// every peer's.
TEST_P(FastPath, NodeCountersIncludeTheCallsBytes) {
  constexpr int kRanks = 3;
  constexpr size_t kCount = 1000;  // one step on the slots
  auto comms = testing::CreateCommunicators(kRanks, MakeConfig(absl::Seconds(20)));
  ASSERT_TRUE(comms.ok()) << comms.status();
  std::vector<CommStats> before(kRanks), after(kRanks);
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    std::vector<float> values(kCount, 1.0f);
    before[comm.rank()] = comm.Stats();
    absl::Status s = Allreduce(comm, {values.data(), values.data(), kCount, DataType::kFloat32, ReduceOp::kSum, {}, ""});
    after[comm.rank()] = comm.Stats();
    return s;
  });
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    const uint64_t sent = after[r].node.bytes_sent - before[r].node.bytes_sent;
    const uint64_t received = after[r].node.bytes_received - before[r].node.bytes_received;
    // At least the others' shares of its input; at most its whole input to every peer.
    EXPECT_GE(sent, kCount * sizeof(float) * (kRanks - 1) / kRanks) << "rank " << r;
    EXPECT_LE(sent, kCount * sizeof(float) * (kRanks - 1) + 1024) << "rank " << r;
    EXPECT_GE(received, kCount * sizeof(float) * (kRanks - 1) / kRanks) << "rank " << r;
    EXPECT_EQ(after[r].collectives, before[r].collectives + 1) << "rank " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(OnAndOff, FastPath, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "FastPath" : "NoFastPath"; });

}  // namespace
}  // namespace silk
