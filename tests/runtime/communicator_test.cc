// What a communicator does to its process: with SILK_CPUS every thread it
// starts runs on the CPUs named there, while the thread that created it keeps
// its own; completion callbacks may run blocking collectives; and Abseil's
// mutex deadlock detection is off unless asked for.
#include <dirent.h>
#include <pthread.h>
#include <sched.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "collectives/collectives.h"
#include "gtest/gtest.h"
#include "runtime/communicator.h"
#include "runtime/core/cpu_set.h"
#include "runtime/core/status_macros.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

struct NamedThread {
  std::string name;
  std::vector<int> cpus;
};

std::string ThisThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}

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

// A collective's completion callback may run a blocking collective on the
// same communicator (PowerSGD's shape under DDP): it completes on every rank.
// A second completion arriving while that callback waits gets a callback
// thread of its own, and every callback thread runs on SILK_CPUS.
TEST(CommunicatorCallbacks, ACallbackMayRunABlockingCollectiveOnTheSameCommunicator) {
  const std::vector<int> silk_cpus = {ThisThreadCpus().back()};
  Config config = testing::TestConfig();
  config.cpus = silk_cpus;
  auto comms = testing::CreateCommunicators(3, config);
  ASSERT_TRUE(comms.ok()) << comms.status();
  absl::Notification done;
  std::vector<absl::Status> results;
  std::thread runner([&] {
    results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      // Holds the engine until both callbacks are in place, so that neither
      // runs at once on this thread and every rank issues the same sequence.
      absl::Notification release;
      OpDescriptor hold;
      hold.kind = CollectiveKind::kProbe;
      WorkPtr gate = comm.Submit(hold, absl::ZeroDuration(), [&](OpContext&) {
        release.WaitForNotificationWithTimeout(absl::Seconds(30));
        return absl::OkStatus();
      });
      std::vector<float> first(1000, 1.0f), second(1000, 2.0f), nested_data(1000, 0.0f);
      AllreduceOptions o;
      o.count = first.size();
      o.input = o.output = first.data();
      absl::StatusOr<WorkPtr> w1 = AllreduceAsync(comm, o);
      o.input = o.output = second.data();
      absl::StatusOr<WorkPtr> w2 = AllreduceAsync(comm, o);
      if (!w1.ok()) return w1.status();
      if (!w2.ok()) return w2.status();
      absl::Status nested = absl::UnknownError("the callback did not run");
      std::vector<int> cpus1, cpus2;
      std::string name1, name2;
      (*w1)->OnComplete([&](const absl::Status& s) {
        cpus1 = ThisThreadCpus();
        name1 = ThisThreadName();
        if (!s.ok()) {
          nested = s;
          return;
        }
        for (size_t i = 0; i < first.size(); ++i) nested_data[i] = first[i] + static_cast<float>(comm.rank());
        AllreduceOptions n;
        n.input = n.output = nested_data.data();
        n.count = nested_data.size();
        nested = Allreduce(comm, n);  // blocking, on the same communicator
      });
      (*w2)->OnComplete([&](const absl::Status&) {
        cpus2 = ThisThreadCpus();
        name2 = ThisThreadName();
      });
      release.Notify();
      SILK_RETURN_IF_ERROR(gate->Wait());
      SILK_RETURN_IF_ERROR((*w1)->Wait());
      SILK_RETURN_IF_ERROR((*w2)->Wait());
      SILK_RETURN_IF_ERROR(nested);
      if (first[5] != 3.0f || second[5] != 6.0f || nested_data[5] != 3.0f * 3 + 0 + 1 + 2) {
        return absl::InternalError(absl::StrFormat("wrong sums: %g %g %g", first[5], second[5], nested_data[5]));
      }
      if (name1 != "silk-callbacks" || name2 != "silk-callbacks") {
        return absl::InternalError(absl::StrFormat("callbacks ran on %s and %s", name1, name2));
      }
      if (cpus1 != silk_cpus || cpus2 != silk_cpus) {
        return absl::InternalError(absl::StrFormat("callbacks ran on CPUs %s and %s, not SILK_CPUS %s",
                                                   FormatCpuList(cpus1), FormatCpuList(cpus2),
                                                   FormatCpuList(silk_cpus)));
      }
      return absl::OkStatus();
    });
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
    ADD_FAILURE() << "a blocking collective in a completion callback did not finish within 60 s (deadlocked?)";
    std::fflush(nullptr);
    std::_Exit(1);  // fail, rather than hang
  }
  runner.join();
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
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
