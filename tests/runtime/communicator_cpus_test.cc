// SILK_CPUS: every thread a communicator starts runs on the CPUs it names, and
// the thread that created the communicator keeps its own.
#include <dirent.h>
#include <sched.h>

#include <fstream>
#include <string>

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
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(std::stoi(entry->d_name), sizeof(set), &set) != 0) continue;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) t.cpus.push_back(cpu);
    }
    threads.push_back(t);
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

}  // namespace
}  // namespace silk
