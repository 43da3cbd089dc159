#include "training/thread_cpu.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <thread>

#include "absl/time/clock.h"

namespace silk::training {
namespace {

// Keeps one core busy for `how_long` on a thread named `name`.
void Spin(const char* name, absl::Duration how_long) {
  pthread_setname_np(pthread_self(), name);
  const absl::Time end = absl::Now() + how_long;
  std::atomic<uint64_t> sink{0};
  while (absl::Now() < end) sink.fetch_add(1, std::memory_order_relaxed);
}

TEST(ThreadCpu, CountsSilkThreadsApartFromTheOthers) {
  std::atomic<bool> stop{false};  // the thread must still live when /proc/self/task is read
  std::thread live([&] {
    Spin("silk-live", absl::Milliseconds(300));
    while (!stop) absl::SleepFor(absl::Milliseconds(5));
  });
  absl::SleepFor(absl::Milliseconds(400));
  const std::vector<ThreadCpu> threads = ReadThreadCpuTimes();
  stop = true;
  live.join();
  bool found = false;
  for (const ThreadCpu& t : threads) {
    if (t.name == "silk-live") {
      found = true;
      EXPECT_GT(t.user_s + t.system_s, 0.1) << "a thread that spun 300 ms";
    }
  }
  EXPECT_TRUE(found);
  const CpuSummary summary = SummarizeThreadCpu(threads);
  EXPECT_GT(summary.silk_s, 0.1);
}

TEST(MachineCpu, CountsTheBusyTimeOfASpinningThread) {
  const MachineCpu before = ReadMachineCpu();
  Spin("spin", absl::Milliseconds(500));
  const MachineCpu after = ReadMachineCpu();
  ASSERT_GT(before.busy_s + before.idle_s, 0) << "/proc/stat unreadable";
  // At least most of the 500 ms this thread spun (the clock ticks at 100 Hz), the steal never negative.
  EXPECT_GE(after.busy_s - before.busy_s, 0.3);
  EXPECT_GE(after.steal_s, before.steal_s);
  EXPECT_GE(after.idle_s, before.idle_s);
}

}  // namespace
}  // namespace silk::training
