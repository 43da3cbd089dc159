// Separate processes joined by the environment (torchrun-style) bootstrap.
#include <string>

#include "gtest/gtest.h"
#include "tests/support/processes.h"

namespace silk {
namespace {

TEST(MultiProcess, EnvironmentBootstrapFourRanks) {
  auto results = testing::LaunchRanks(SILK_COLLECTIVE_CHECK, {}, 4, absl::Seconds(120));
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << "rank " << r << " output:\n" << results[r].output;
    EXPECT_NE(results[r].output.find("OK rank"), std::string::npos) << results[r].output;
  }
}

TEST(MultiProcess, PeerDyingMidOperationGivesEveryRankAClearErrorNotAHang) {
  // A short operation timeout: even a rank that never sees the broken
  // connection must give up well before the test's deadline.
  auto results = testing::LaunchRanks(SILK_COLLECTIVE_CHECK, {"--die-rank", "2"}, 4, absl::Seconds(90),
                                      {{"SILK_TIMEOUT", "30s"}});
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[2].exit_code, 9) << results[2].output;
  for (int r : {0, 1, 3}) {
    EXPECT_EQ(results[r].exit_code, 3) << "rank " << r << " output:\n" << results[r].output;
    EXPECT_NE(results[r].output.find("rank 2"), std::string::npos) << "rank " << r << ":\n" << results[r].output;
  }
}

TEST(MultiProcess, MismatchedLaneCountsAreReportedAtCreation) {
  auto results = testing::LaunchRanks(SILK_COLLECTIVE_CHECK, {}, 2, absl::Seconds(60), {},
                                      {{1, {"--env", "SILK_LANES=3"}}});
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 1) << results[r].output;
    EXPECT_NE(results[r].output.find("SILK_LANES"), std::string::npos) << "rank " << r << ":\n" << results[r].output;
  }
}

// A rank that would probe the network tiers while the others would not, or
// use shared memory where they use TCP, must not wait for a probe or a
// message that never comes: creation fails on every rank, naming the setting.
TEST(MultiProcess, MismatchedProbeOrSharedMemorySettingsAreReportedAtCreation) {
  for (const char* setting : {"SILK_PROBE_TIERS=0", "SILK_SHM=0"}) {
    auto results = testing::LaunchRanks(SILK_COLLECTIVE_CHECK, {}, 2, absl::Seconds(60), {},
                                        {{1, {"--env", setting}}});
    const std::string name = std::string(setting).substr(0, std::string(setting).find('='));
    for (size_t r = 0; r < results.size(); ++r) {
      EXPECT_EQ(results[r].exit_code, 1) << setting << ", rank " << r << ":\n" << results[r].output;
      EXPECT_NE(results[r].output.find(name), std::string::npos) << setting << ", rank " << r << ":\n"
                                                                  << results[r].output;
    }
  }
}

}  // namespace
}  // namespace silk
