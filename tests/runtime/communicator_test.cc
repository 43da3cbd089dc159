// What a communicator does to its process: with SILK_CPUS every thread it
// starts runs on the CPUs named there, while the thread that created it keeps
// its own; and Abseil's mutex deadlock detection is off unless asked for.
#include <dirent.h>
#include <sched.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "runtime/communicator.h"
#include "runtime/core/cpu_set.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

struct NamedThread {
  std::string name;
  std::vector<int> cpus;
};

std::vector<NamedThread> ThisProcessThreads() {
  std::vector<NamedThread> threads;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return threads;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    NamedThread t;
    std::ifstream(std::string("/proc/self/task/") + entry->d_name + "/comm") >> t.name;
    t.cpus = ThreadCpus(std::stoi(entry->d_name));
    if (!t.cpus.empty()) threads.push_back(t);
  }
  closedir(dir);
  return threads;
}

TEST(CommunicatorCpus, EverySilkThreadRunsOnTheConfiguredCpus) {
  const std::vector<int> before = ThisThreadCpus();
  const std::vector<int> silk_cpus = {before.back()};
  Config config = testing::TestConfig();
  config.cpus = silk_cpus;
  // Two ranks on one node (shared memory, routing) and one on another (TCP lanes).
  auto comms = testing::CreateCommunicators(3, [&](int rank) {
    Config c = config;
    c.node = rank < 2 ? "n0" : "n1";
    return c;
  });
  ASSERT_TRUE(comms.ok()) << comms.status();
  std::vector<absl::Status> results = testing::RunOnRanks(*comms, [](Communicator& comm) {
    std::vector<float> data(1 << 16, 1.0f);
    AllreduceOptions o;
    o.input = o.output = data.data();
    o.count = data.size();
    absl::Status s = Allreduce(comm, o);
    if (s.ok() && data[7] != 3.0f) return absl::InternalError("wrong sum");
    return s;
  });
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;

  int silk_threads = 0;
  for (const NamedThread& t : ThisProcessThreads()) {
    if (t.name.rfind("silk-", 0) != 0) continue;
    ++silk_threads;
    EXPECT_EQ(t.cpus, silk_cpus) << t.name << " runs on " << FormatCpuList(t.cpus);
  }
  // Per rank at least: engine streams, progress threads, the acceptor, shm or routing.
  EXPECT_GE(silk_threads, 3 * 4);
  EXPECT_EQ(ThisThreadCpus(), before);
}

TEST(CommunicatorCpus, ACpuTheProcessCannotUseFailsCreateOnEveryRank) {
  Config config = testing::TestConfig();
  config.cpus = {CPU_SETSIZE - 1};
  auto comms = testing::CreateCommunicators(2, config);
  ASSERT_FALSE(comms.ok());
  EXPECT_NE(comms.status().message().find("SILK_CPUS"), std::string::npos) << comms.status();
}

// Locks two mutexes in one order, then in the other: a lock-order inversion,
// which Abseil's deadlock detection (on in Debian's build) reports by aborting.
void InvertLockOrder() {
  absl::Mutex a, b;
  { absl::MutexLock la(&a); absl::MutexLock lb(&b); }
  { absl::MutexLock lb(&b); absl::MutexLock la(&a); }
}

TEST(CommunicatorMutexChecks, OffForTheProcessOnceACommunicatorExistsUnlessAsked) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto with_a_communicator_then_invert = [](bool checks) {
    Config config = testing::TestConfig();
    config.mutex_deadlock_checks = checks;
    auto comms = testing::CreateCommunicators(1, config);
    if (!comms.ok()) std::exit(3);
    InvertLockOrder();
    std::exit(0);
  };
  EXPECT_EXIT(with_a_communicator_then_invert(false), ::testing::ExitedWithCode(0), "");
  // Where Abseil detects deadlocks at all (Debian's does), the checks kept on catch the inversion.
  bool abseil_detects = true;
  EXPECT_EXIT(
      {
        InvertLockOrder();
        std::exit(0);
      },
      [&](int status) {
        abseil_detects = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return true;
      },
      "");
  if (abseil_detects) {
    EXPECT_DEATH(with_a_communicator_then_invert(true), "");
  }
}

}  // namespace
}  // namespace silk
