#include "training/thread_cpu.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "absl/time/clock.h"
#include "runtime/core/cpu_set.h"

namespace silk::training {
namespace {

double ThisThreadCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// Spins on a thread named `name` until it has used `cpu_s` of CPU (not of wall
// time: on a loaded machine the two differ), or 30 s have passed.
void Spin(const char* name, double cpu_s) {
  pthread_setname_np(pthread_self(), name);
  const double start = ThisThreadCpuSeconds();
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  std::atomic<uint64_t> sink{0};
  while (ThisThreadCpuSeconds() - start < cpu_s && absl::Now() < give_up) {
    sink.fetch_add(1, std::memory_order_relaxed);
  }
}

// Runs `prepare` on a new thread, then reads every thread's figures while that
// thread still lives (it must be in /proc/self/task). Sets `prepared` to
// whether `prepare` returned true within `bound`.
std::vector<ThreadCpu> ReadWhileAThreadLives(const std::function<bool()>& prepare, absl::Duration bound,
                                             bool* prepared) {
  std::atomic<bool> ready{false}, ok{false}, stop{false};
  std::thread live([&] {
    ok = prepare();
    ready = true;
    while (!stop) absl::SleepFor(absl::Milliseconds(5));
  });
  const absl::Time give_up = absl::Now() + bound;
  while (!ready && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  std::vector<ThreadCpu> threads = ReadThreadCpuTimes();
  *prepared = ready && ok;
  stop = true;
  live.join();
  return threads;
}

TEST(ThreadCpu, CountsSilkThreadsApartFromTheOthers) {
  bool spun = false;
  const std::vector<ThreadCpu> threads = ReadWhileAThreadLives(
      [] {
        Spin("silk-live", 0.3);
        return true;
      },
      absl::Seconds(40), &spun);
  ASSERT_TRUE(spun) << "the spinning thread did not get 300 ms of CPU in 30 s";
  bool found = false;
  for (const ThreadCpu& t : threads) {
    if (t.name == "silk-live") {
      found = true;
      EXPECT_GT(t.user_s + t.system_s, 0.2) << "a thread that used 300 ms of CPU (the counters tick at 100 Hz)";
    }
  }
  EXPECT_TRUE(found);
  const CpuSummary summary = SummarizeThreadCpu(threads);
  EXPECT_GT(summary.silk_s, 0.2);
}

TEST(ThreadCpu, ReportsWhereEachThreadMayRun) {
  const std::vector<int> all = ThisThreadCpus();
  ASSERT_FALSE(all.empty());
  const std::vector<int> last = {all.back()};
  bool placed = false;
  const std::vector<ThreadCpu> threads = ReadWhileAThreadLives(
      [&] {
        pthread_setname_np(pthread_self(), "silk-pinned");
        return PinThisThread(last).ok();
      },
      absl::Seconds(10), &placed);
  ASSERT_TRUE(placed);
  EXPECT_EQ(ThreadsCpus(threads, "silk-pinned"), FormatCpuList(last));
  EXPECT_EQ(ThreadsCpus(threads, "silk-*"), FormatCpuList(last));
  EXPECT_EQ(ThreadsCpus(threads, "no-such-thread"), "");
  bool main_seen = false;
  for (const ThreadCpu& t : threads) {
    if (t.tid == getpid()) {
      main_seen = true;
      EXPECT_EQ(t.cpus, all);
    }
  }
  EXPECT_TRUE(main_seen);
}

TEST(MachineCpu, CountsTheBusyTimeOfASpinningThread) {
  const MachineCpu before = ReadMachineCpu();
  Spin("spin", 0.5);
  const MachineCpu after = ReadMachineCpu();
  ASSERT_GT(before.busy_s + before.idle_s, 0) << "/proc/stat unreadable";
  // At least the 500 ms of CPU this thread used, less the clock's 100 Hz ticks; the steal never goes back.
  EXPECT_GE(after.busy_s - before.busy_s, 0.4);
  EXPECT_GE(after.steal_s, before.steal_s);
  EXPECT_GE(after.idle_s, before.idle_s);
}

}  // namespace
}  // namespace silk::training
