#include "runtime/core/cpu_set.h"

#include <cstdlib>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/core/config.h"

namespace silk {
namespace {

TEST(CpuList, ParsesLinuxListFormat) {
  EXPECT_EQ(*ParseCpuList("0"), std::vector<int>({0}));
  EXPECT_EQ(*ParseCpuList("0-3"), std::vector<int>({0, 1, 2, 3}));
  EXPECT_EQ(*ParseCpuList("8, 2-3,0"), std::vector<int>({0, 2, 3, 8}));
  EXPECT_EQ(*ParseCpuList("1,1-2"), std::vector<int>({1, 2}));  // duplicates fold
}

TEST(CpuList, RefusesWhatIsNotAList) {
  for (const char* bad : {"", " ", "a", "-1", "3-1", "1-", "1,,2", "0-99999"}) {
    absl::StatusOr<std::vector<int>> parsed = ParseCpuList(bad);
    ASSERT_FALSE(parsed.ok()) << "\"" << bad << "\"";
    EXPECT_NE(parsed.status().message().find("CPU list"), std::string::npos) << parsed.status();
  }
}

TEST(CpuList, FormatsRanges) {
  EXPECT_EQ(FormatCpuList({0, 1, 2, 3, 8}), "0-3,8");
  EXPECT_EQ(FormatCpuList({1}), "1");
  EXPECT_EQ(FormatCpuList({0, 2, 4}), "0,2,4");
  EXPECT_EQ(FormatCpuList({}), "");
  EXPECT_EQ(FormatCpuList(*ParseCpuList("0-2,5-6")), "0-2,5-6");
}

// The last CPU this test may run on, as a set of one.
std::vector<int> OneAllowedCpu() { return {ThisThreadCpus().back()}; }

TEST(ScopedThreadCpus, PinsRestoresAndIsInheritedByNewThreads) {
  const std::vector<int> before = ThisThreadCpus();
  ASSERT_FALSE(before.empty());
  const std::vector<int> one = OneAllowedCpu();
  std::vector<int> inherited, after_guard_thread;
  {
    ScopedThreadCpus guard(one);
    ASSERT_TRUE(guard.status().ok()) << guard.status();
    EXPECT_EQ(ThisThreadCpus(), one);
    std::thread([&] { inherited = ThisThreadCpus(); }).join();
  }
  EXPECT_EQ(inherited, one);
  EXPECT_EQ(ThisThreadCpus(), before);
  std::thread([&] { after_guard_thread = ThisThreadCpus(); }).join();
  EXPECT_EQ(after_guard_thread, before);
}

TEST(ScopedThreadCpus, EmptySetLeavesTheThreadAlone) {
  const std::vector<int> before = ThisThreadCpus();
  ScopedThreadCpus guard({});
  EXPECT_TRUE(guard.status().ok());
  EXPECT_EQ(ThisThreadCpus(), before);
}

TEST(ScopedThreadCpus, ACpuThatDoesNotExistIsAnErrorNamingIt) {
  const std::vector<int> before = ThisThreadCpus();
  ScopedThreadCpus guard({CPU_SETSIZE - 1});
  ASSERT_FALSE(guard.status().ok());
  EXPECT_NE(guard.status().message().find(std::to_string(CPU_SETSIZE - 1)), std::string::npos) << guard.status();
  EXPECT_EQ(ThisThreadCpus(), before);
}

// SILK_CPUS is read with the rest of the environment, and checked there.
class SilkCpusVariable : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("SILK_CPUS"); }
};

TEST_F(SilkCpusVariable, UnsetMeansNoPlacement) {
  unsetenv("SILK_CPUS");
  absl::StatusOr<Config> config = Config::FromEnvironment();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->cpus.empty());
}

TEST_F(SilkCpusVariable, AnAllowedListIsTaken) {
  const std::vector<int> one = OneAllowedCpu();
  setenv("SILK_CPUS", FormatCpuList(one).c_str(), 1);
  absl::StatusOr<Config> config = Config::FromEnvironment();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cpus, one);
}

TEST_F(SilkCpusVariable, IsCheckedAgainstTheMachineNotThisThread) {
  const std::vector<int> online = OnlineCpus();
  if (online.size() < 2) GTEST_SKIP() << "needs two CPUs";
  ScopedThreadCpus pinned_elsewhere({online.back()});  // as a training loop pins its compute thread
  ASSERT_TRUE(pinned_elsewhere.status().ok()) << pinned_elsewhere.status();
  setenv("SILK_CPUS", FormatCpuList({online.front()}).c_str(), 1);
  absl::StatusOr<Config> config = Config::FromEnvironment();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cpus, std::vector<int>({online.front()}));
}

TEST_F(SilkCpusVariable, GarbageOrACpuTheMachineLacksIsAnError) {
  for (const std::string& bad : {std::string("zero"), std::to_string(CPU_SETSIZE - 1)}) {
    setenv("SILK_CPUS", bad.c_str(), 1);
    absl::StatusOr<Config> config = Config::FromEnvironment();
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_NE(config.status().message().find("SILK_CPUS"), std::string::npos) << config.status();
  }
}

}  // namespace
}  // namespace silk
