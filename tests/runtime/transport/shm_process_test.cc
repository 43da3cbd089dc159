// The shared-memory path between real processes: ranks launched with the
// torchrun-style variables on this node talk through shared memory (or TCP
// with SILK_SHM=0), and a rank killed outright is named by the others at once,
// not at their timeout. No Silk segment is ever left in /dev/shm.
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/processes.h"

namespace silk {
namespace {

void ExpectNoSilkSegmentInDevShm() {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", error)) {
    EXPECT_EQ(entry.path().filename().string().find("silk"), std::string::npos) << entry.path();
  }
}

TEST(ShmProcesses, FourRanksExchangeThroughSharedMemory) {
  auto results = testing::LaunchRanks(SILK_SHM_CHECK, {}, 4, absl::Seconds(50));
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << "rank " << r << ":\n" << results[r].output;
    EXPECT_NE(results[r].output.find("path shm"), std::string::npos) << results[r].output;
  }
  ExpectNoSilkSegmentInDevShm();
}

TEST(ShmProcesses, SharedMemoryOffMeansLoopbackTcp) {
  auto results = testing::LaunchRanks(SILK_SHM_CHECK, {}, 3, absl::Seconds(50), {{"SILK_SHM", "0"}});
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << "rank " << r << ":\n" << results[r].output;
    EXPECT_NE(results[r].output.find("path tcp"), std::string::npos) << results[r].output;
  }
}

// The survivors wait with a 60 s deadline; they must fail with the lost
// connection, not with a timeout.
TEST(ShmProcesses, RankKilledMidTransferIsNamedByEveryOtherRank) {
  auto results = testing::LaunchRanks(SILK_SHM_CHECK, {"--kill-rank", "2"}, 4, absl::Seconds(50));
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[2].exit_code, 128 + 9) << results[2].output;
  for (int r : {0, 1, 3}) {
    EXPECT_EQ(results[r].exit_code, 3) << "rank " << r << ":\n" << results[r].output;
    EXPECT_NE(results[r].output.find("lost connection to rank 2"), std::string::npos) << results[r].output;
    EXPECT_EQ(results[r].output.find("DEADLINE_EXCEEDED"), std::string::npos) << results[r].output;
  }
  ExpectNoSilkSegmentInDevShm();
}

TEST(ShmProcesses, RankKilledWhileIdleFailsTheOthersWithoutAnOperation) {
  auto results = testing::LaunchRanks(SILK_SHM_CHECK, {"--kill-rank", "1", "--idle"}, 3, absl::Seconds(50));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[1].exit_code, 128 + 9) << results[1].output;
  for (int r : {0, 2}) {
    EXPECT_EQ(results[r].exit_code, 3) << "rank " << r << ":\n" << results[r].output;
    EXPECT_NE(results[r].output.find("rank 1"), std::string::npos) << results[r].output;
    EXPECT_NE(results[r].output.find("(UNAVAILABLE)"), std::string::npos) << results[r].output;
  }
  ExpectNoSilkSegmentInDevShm();
}

}  // namespace
}  // namespace silk
