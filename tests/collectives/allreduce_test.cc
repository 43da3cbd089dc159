// Ring all-reduce on N in-process ranks over real loopback TCP.
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "tests/collectives/suite_reference.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

struct Shape {
  int ranks;
  int lanes;
};

class RingAllreduce : public ::testing::TestWithParam<Shape> {};

// Values whose float sum depends on the order of additions, so a rank that
// reduced in another order would end with other bits.
float Value(int rank, size_t i) {
  return static_cast<float>(std::ldexp(1.0 + 0.1 * ((i * 7 + rank * 13) % 97), static_cast<int>((i + rank) % 40) - 20));
}

TEST_P(RingAllreduce, Float32SumMatchesReferenceAndIsBitIdentical) {
  const Shape shape = GetParam();
  Config config = testing::TestConfig(shape.lanes);
  config.chunk_bytes = 64 << 10;  // several pipeline chunks per segment
  auto comms = testing::CreateCommunicators(shape.ranks, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  for (size_t count :
       {size_t{0}, size_t{1}, size_t(shape.ranks - 1), size_t(shape.ranks + 1), size_t{1000}, size_t{300000}}) {
    std::vector<std::vector<float>> outputs(shape.ranks);
    auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) {
      std::vector<float> input(count);
      for (size_t i = 0; i < count; ++i) input[i] = Value(comm.rank(), i);
      std::vector<float>& output = outputs[comm.rank()];
      output.assign(count, -1.0f);
      AllreduceOptions options;
      options.input = input.data();
      options.output = output.data();
      options.count = count;
      options.algorithm = "ring";
      return Allreduce(comm, options);
    });
    for (int r = 0; r < shape.ranks; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
    for (size_t i = 0; i < count; ++i) {
      double expected = 0;
      for (int r = 0; r < shape.ranks; ++r) expected += Value(r, i);
      ASSERT_NEAR(outputs[0][i], expected, std::abs(expected) * 1e-5) << "element " << i << " count " << count;
    }
    for (int r = 1; r < shape.ranks && count > 0; ++r) {
      ASSERT_EQ(std::memcmp(outputs[r].data(), outputs[0].data(), count * sizeof(float)), 0)
          << "rank " << r << " differs from rank 0 at count " << count;
    }
  }
}

TEST_P(RingAllreduce, InPlaceAndAsyncInFlightTogether) {
  const Shape shape = GetParam();
  auto comms = testing::CreateCommunicators(shape.ranks, testing::TestConfig(shape.lanes));
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    constexpr int kOps = 6;
    std::vector<std::vector<float>> buffers(kOps);
    std::vector<WorkPtr> works;
    for (int k = 0; k < kOps; ++k) {
      buffers[k].assign(10007, static_cast<float>(comm.rank() + k));
      AllreduceOptions options;
      options.input = options.output = buffers[k].data();
      options.count = buffers[k].size();
      options.algorithm = "ring";
      auto work = AllreduceAsync(comm, options);
      if (!work.ok()) return work.status();
      works.push_back(*work);
    }
    for (int k = 0; k < kOps; ++k) {
      if (absl::Status s = works[k]->Wait(); !s.ok()) return s;
      float expected = static_cast<float>(shape.ranks * (shape.ranks - 1) / 2 + shape.ranks * k);
      for (float v : buffers[k]) {
        if (v != expected) return absl::InternalError(absl::StrFormat("op %d: got %f want %f", k, v, expected));
      }
    }
    return absl::OkStatus();
  });
  for (int r = 0; r < shape.ranks; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

INSTANTIATE_TEST_SUITE_P(Shapes, RingAllreduce,
                         ::testing::Values(Shape{1, 1}, Shape{2, 1}, Shape{2, 3}, Shape{3, 2}, Shape{4, 2},
                                           Shape{5, 1}),
                         [](const auto& info) {
                           return absl::StrFormat("ranks%d_lanes%d", info.param.ranks, info.param.lanes);
                         });

TEST(Allreduce, BadArgumentsFailBeforeAnythingIsSent) {
  auto comms = testing::CreateCommunicators(1, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  Communicator& comm = *(*comms)[0];
  float buffer[16];
  AllreduceOptions null_input;
  null_input.output = buffer;
  null_input.count = 4;
  EXPECT_TRUE(absl::IsInvalidArgument(Allreduce(comm, null_input)));
  AllreduceOptions bad_type;
  bad_type.input = bad_type.output = buffer;
  bad_type.count = 4;
  bad_type.type = static_cast<DataType>(42);
  EXPECT_TRUE(absl::IsInvalidArgument(Allreduce(comm, bad_type)));
  AllreduceOptions overlap;
  overlap.input = buffer;
  overlap.output = buffer + 2;
  overlap.count = 8;
  EXPECT_TRUE(absl::IsInvalidArgument(Allreduce(comm, overlap)));
  EXPECT_TRUE(comm.status().ok()) << "bad arguments must not poison the communicator";
}

TEST(Allreduce, MismatchedCountsFailEveryRankNamingBothCalls) {
  auto comms = testing::CreateCommunicators(3, testing::TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  auto results = testing::RunOnRanks(*comms, [](Communicator& comm) {
    std::vector<float> buffer(comm.rank() == 1 ? 2000 : 1000, 1.0f);
    AllreduceOptions options;
    options.input = options.output = buffer.data();
    options.count = buffer.size();
    return Allreduce(comm, options);
  });
  for (int r = 0; r < 3; ++r) {
    EXPECT_FALSE(results[r].ok()) << "rank " << r;
    EXPECT_NE(results[r].message().find("count=2000"), std::string::npos) << "rank " << r << ": " << results[r];
  }
}

// Bit-identical results need values whose float sum depends on the order of
// additions (otherwise any order would do). Check that the suite's values are
// such values, then that every rank of both algorithms ends with the same bits,
// on every call.
TEST(BitIdentical, EveryRankHoldsTheSameBitsAlthoughOrderChangesTheRounding) {
  constexpr size_t kCount = 20000;
  for (int n : {3, 4, 7}) {
    // The data: summing in rank order and in reverse rank order disagree often.
    size_t differ = 0;
    for (size_t i = 0; i < kCount; ++i) {
      float forward = 0, backward = 0;
      for (int r = 0; r < n; ++r) {
        forward += std::bit_cast<float>(
            static_cast<uint32_t>(testing::InputElement(DataType::kFloat32, ReduceOp::kSum, 7, r, i)));
        backward += std::bit_cast<float>(
            static_cast<uint32_t>(testing::InputElement(DataType::kFloat32, ReduceOp::kSum, 7, n - 1 - r, i)));
      }
      differ += forward != backward ? 1 : 0;
    }
    ASSERT_GT(differ, kCount / 10) << "the test values hardly depend on the order of summation";

    Config config = testing::TestConfig();
    config.chunk_bytes = 16 << 10;
    auto comms = testing::CreateCommunicators(n, config);
    ASSERT_TRUE(comms.ok()) << comms.status();
    for (const std::string algorithm : {"ring", "rhd"}) {
      std::vector<std::vector<uint64_t>> hashes(n);
      auto results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
        for (int repeat = 0; repeat < 3; ++repeat) {
          std::vector<float> data(kCount);
          for (size_t i = 0; i < kCount; ++i) {
            data[i] = std::bit_cast<float>(
                static_cast<uint32_t>(testing::InputElement(DataType::kFloat32, ReduceOp::kSum, 7, comm.rank(), i)));
          }
          AllreduceOptions options;
          options.input = options.output = data.data();
          options.count = kCount;
          options.algorithm = algorithm;
          if (absl::Status s = Allreduce(comm, options); !s.ok()) return s;
          hashes[comm.rank()].push_back(testing::Fnv1a(data.data(), kCount * sizeof(float)));
        }
        return absl::OkStatus();
      });
      for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
      for (int r = 0; r < n; ++r) {
        for (int repeat = 0; repeat < 3; ++repeat) {
          EXPECT_EQ(hashes[r][repeat], hashes[0][0])
              << algorithm << ", " << n << " ranks: rank " << r << " call " << repeat;
        }
      }
    }
  }
}

}  // namespace
}  // namespace silk
