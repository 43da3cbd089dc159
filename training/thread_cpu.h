// Per-thread CPU time of this process, from /proc/self/task/*/stat, so that a
// training program can show that the exchange runs on Silk's own threads
// (silk-*) and not on the compute thread.
#pragma once

#include <string>
#include <vector>

namespace silk::training {

struct ThreadCpu {
  int tid = 0;
  std::string name;     // the thread's comm (e.g. "silk-engine")
  double user_s = 0;    // utime
  double system_s = 0;  // stime
};

// Every thread of this process; empty where /proc is unavailable.
std::vector<ThreadCpu> ReadThreadCpuTimes();

// Sums by name: threads named "silk-..." (engine, progress, routing) as silk_s,
// all others (the compute thread, BLAS and MPI threads) as other_s.
struct CpuSummary {
  double silk_s = 0, other_s = 0;
};
CpuSummary SummarizeThreadCpu(const std::vector<ThreadCpu>& threads);

}  // namespace silk::training
