// Bad arguments are refused on the calling thread with InvalidArgument, before
// anything is sent, and leave the communicator healthy: every rank makes the
// same bad calls and then a good one, which must succeed.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

constexpr int kRanks = 3;
const DataType kBadType = static_cast<DataType>(42);
const ReduceOp kBadOp = static_cast<ReduceOp>(17);

// What went wrong with calls that should have been refused ("" if nothing).
class Refusals {
 public:
  // Every call is expected to fail with InvalidArgument mentioning `text`.
  void Expect(const absl::StatusOr<WorkPtr>& work, const std::string& text) {
    if (work.ok()) {
      problems_ += "accepted a call that should mention \"" + text + "\"; ";
    } else if (!absl::IsInvalidArgument(work.status())) {
      problems_ += "not InvalidArgument: " + work.status().ToString() + "; ";
    } else if (work.status().message().find(text) == std::string::npos) {
      problems_ += "message lacks \"" + text + "\": " + work.status().ToString() + "; ";
    }
  }
  const std::string& problems() const { return problems_; }

 private:
  std::string problems_;
};

class Arguments : public ::testing::Test {
 protected:
  // Runs `bad(comm)` on every rank, expects each to be refused, then checks
  // that an all-reduce still works.
  void ExpectRefused(const std::function<void(Communicator&, Refusals&)>& bad) {
    auto results = testing::RunOnRanks(*comms_, [&](Communicator& comm) -> absl::Status {
      Refusals refusals;
      bad(comm, refusals);
      if (!refusals.problems().empty()) return absl::InternalError(refusals.problems());
      std::vector<int32_t> data(10, comm.rank());
      if (absl::Status s = Allreduce(comm, {data.data(), data.data(), 10, DataType::kInt32, ReduceOp::kSum, {}, ""});
          !s.ok()) {
        return s;
      }
      if (data[9] != kRanks * (kRanks - 1) / 2) return absl::InternalError("the all-reduce after it is wrong");
      return absl::OkStatus();
    });
    for (int r = 0; r < kRanks; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  }

  static void SetUpTestSuite() {
    auto comms = testing::CreateCommunicators(kRanks, testing::TestConfig());
    ASSERT_TRUE(comms.ok()) << comms.status();
    comms_ = new std::vector<std::unique_ptr<Communicator>>(std::move(*comms));
  }
  static void TearDownTestSuite() {
    delete comms_;
    comms_ = nullptr;
  }
  static std::vector<std::unique_ptr<Communicator>>* comms_;

  float a_[64] = {};
  float b_[64] = {};
};
std::vector<std::unique_ptr<Communicator>>* Arguments::comms_ = nullptr;

TEST_F(Arguments, NullBuffersWithElements) {
  ExpectRefused([&](Communicator& comm, Refusals& r) {
    r.Expect(AllreduceAsync(comm, {nullptr, b_, 4, DataType::kFloat32, ReduceOp::kSum, {}, ""}),
             "allreduce input buffer is null");
    r.Expect(ReduceScatterAsync(comm, {a_, nullptr, 4, DataType::kFloat32, ReduceOp::kSum, {}, ""}),
             "reduce_scatter output buffer is null");
    r.Expect(AllgatherAsync(comm, {nullptr, b_, 4, DataType::kFloat32, {}, ""}), "allgather input buffer is null");
    r.Expect(BroadcastAsync(comm, {a_, nullptr, 4, DataType::kFloat32, 0, {}, ""}), "broadcast output buffer is null");
    r.Expect(AlltoallAsync(comm, {a_, nullptr, 4, DataType::kFloat32, {}, ""}), "alltoall output buffer is null");
    r.Expect(ReduceAsync(comm, {nullptr, b_, 4, DataType::kFloat32, ReduceOp::kSum, 0, {}, ""}),
             "reduce input buffer is null");
  });
}

TEST_F(Arguments, NullBuffersWithoutElementsAreFine) {
  auto results = testing::RunOnRanks(*comms_, [&](Communicator& comm) -> absl::Status {
    if (auto s = Allreduce(comm, {nullptr, nullptr, 0, DataType::kFloat32, ReduceOp::kSum, {}, ""}); !s.ok()) return s;
    if (auto s = Broadcast(comm, {nullptr, nullptr, 0, DataType::kInt8, 1, {}, ""}); !s.ok()) return s;
    return Allgatherv(comm, {nullptr, nullptr, {0, 0, 0}, DataType::kInt64, {}, ""});
  });
  for (int r = 0; r < kRanks; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

TEST_F(Arguments, UnknownTypeOrReduction) {
  ExpectRefused([&](Communicator& comm, Refusals& r) {
    r.Expect(AllreduceAsync(comm, {a_, b_, 4, kBadType, ReduceOp::kSum, {}, ""}), "unknown data type 42");
    r.Expect(AllreduceAsync(comm, {a_, b_, 4, DataType::kFloat32, kBadOp, {}, ""}), "unknown reduction 17");
    r.Expect(ReduceAsync(comm, {a_, b_, 4, DataType::kFloat32, kBadOp, 0, {}, ""}), "unknown reduction 17");
    r.Expect(AlltoallAsync(comm, {a_, b_, 4, kBadType, {}, ""}), "unknown data type 42");
  });
}

TEST_F(Arguments, RootOutOfRange) {
  ExpectRefused([&](Communicator& comm, Refusals& r) {
    r.Expect(BroadcastAsync(comm, {a_, a_, 4, DataType::kFloat32, kRanks, {}, ""}),
             "broadcast root 3 is outside the world of 3 ranks");
    r.Expect(ReduceAsync(comm, {a_, b_, 4, DataType::kFloat32, ReduceOp::kSum, -1, {}, ""}),
             "reduce root -1 is outside");
  });
}

TEST_F(Arguments, OverlappingBuffers) {
  ExpectRefused([&](Communicator& comm, Refusals& r) {
    r.Expect(AllreduceAsync(comm, {a_, a_ + 1, 8, DataType::kFloat32, ReduceOp::kSum, {}, ""}), "overlap");
    r.Expect(AlltoallAsync(comm, {a_, a_ + 3, 4, DataType::kFloat32, {}, ""}), "overlap");
    // Reduce-scatter in place means output == input + rank * count; anything else overlapping is refused.
    const int wrong = (comm.rank() + 1) % kRanks;
    r.Expect(ReduceScatterAsync(comm, {a_, a_ + wrong * 4, 4, DataType::kFloat32, ReduceOp::kSum, {}, ""}),
             "reduce_scatter output overlaps");
    r.Expect(AllgatherAsync(comm, {a_ + wrong * 4, a_, 4, DataType::kFloat32, {}, ""}), "allgather input overlaps");
    r.Expect(BroadcastAsync(comm, {a_, a_ + 2, 4, DataType::kFloat32, comm.rank(), {}, ""}), "overlap");
  });
}

TEST_F(Arguments, AllgathervNeedsOneCountPerRank) {
  ExpectRefused([&](Communicator& comm, Refusals& r) {
    r.Expect(AllgathervAsync(comm, {a_, b_, {1, 1}, DataType::kFloat32, {}, ""}),
             "one count per rank: got 2 counts for 3 ranks");
  });
}

TEST_F(Arguments, CountsTooLargeForMemory) {
  ExpectRefused([&](Communicator& comm, Refusals& r) {
    const size_t huge = std::numeric_limits<size_t>::max() / 2;
    r.Expect(AllreduceAsync(comm, {a_, b_, huge, DataType::kFloat64, ReduceOp::kSum, {}, ""}), "do not fit in memory");
    r.Expect(AllgathervAsync(comm, {a_, b_, {huge, huge, huge}, DataType::kInt8, {}, ""}), "overflow");
  });
}

TEST_F(Arguments, UnknownAlgorithms) {
  ExpectRefused([&](Communicator& comm, Refusals& r) {
    r.Expect(AllreduceAsync(comm, {a_, b_, 4, DataType::kFloat32, ReduceOp::kSum, {}, "fastest"}),
             "unknown allreduce algorithm \"fastest\" (known: ring, rhd, hierarchical)");
    // Known names, but not for this operation.
    r.Expect(AllreduceAsync(comm, {a_, b_, 4, DataType::kFloat32, ReduceOp::kSum, {}, "tree"}),
             "unknown allreduce algorithm \"tree\"");
    r.Expect(BroadcastAsync(comm, {a_, a_, 4, DataType::kFloat32, 0, {}, "rhd"}),
             "unknown broadcast algorithm \"rhd\" (known: ring, tree, hierarchical)");
    r.Expect(BarrierAsync(comm, {{}, "ring"}), "unknown barrier algorithm");
  });
}

TEST(ArgumentsFromConfig, UnknownSilkAlgoIsRefusedByEveryCall) {
  Config config = testing::TestConfig();
  config.algorithm = "bogus";
  auto comms = testing::CreateCommunicators(2, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) -> absl::Status {
    float data[4] = {};
    absl::Status s = Allreduce(comm, {data, data, 4, DataType::kFloat32, ReduceOp::kSum, {}, ""});
    if (!absl::IsInvalidArgument(s) || s.message().find("SILK_ALGO=\"bogus\"") == std::string::npos) {
      return absl::InternalError("SILK_ALGO=bogus was not refused clearly: " + s.ToString());
    }
    // A per-call choice still works, and the communicator is healthy.
    return Allreduce(comm, {data, data, 4, DataType::kFloat32, ReduceOp::kSum, {}, "ring"});
  });
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

}  // namespace
}  // namespace silk
