// Per-thread CPU time and placement of this process, from /proc/self/task, so
// that a training program can show that the exchange runs on Silk's own
// threads (silk-*), not on the compute thread, and on which CPUs each may run;
// and the whole machine's, from /proc/stat, so that it can show what a step
// costs in CPU on a shared machine and how much the hypervisor took (steal).
#pragma once

#include <string>
#include <vector>

namespace silk::training {

struct ThreadCpu {
  int tid = 0;
  std::string name;     // the thread's comm (e.g. "silk-engine")
  double user_s = 0;    // utime
  double system_s = 0;  // stime
  std::vector<int> cpus;  // where it may run (its affinity)
};

// Every thread of this process; empty where /proc is unavailable.
std::vector<ThreadCpu> ReadThreadCpuTimes();

// The CPUs that the threads named `name`, or starting with it when it ends in
// '*' ("silk-*"), may run on, together: e.g. "0" or "0-1" (empty: none such).
std::string ThreadsCpus(const std::vector<ThreadCpu>& threads, const std::string& name);

// Sums by name: threads named "silk-..." (engine, progress, routing) as silk_s,
// all others (the compute thread, BLAS and MPI threads) as other_s.
struct CpuSummary {
  double silk_s = 0, other_s = 0;
};
CpuSummary SummarizeThreadCpu(const std::vector<ThreadCpu>& threads);

// The machine's CPU time since boot, summed over its cores (core-seconds):
// busy (user, nice, system, irq, softirq), idle (idle, iowait) and stolen by
// the hypervisor. All zero where /proc/stat is unavailable.
struct MachineCpu {
  double busy_s = 0, idle_s = 0, steal_s = 0;
};
MachineCpu ReadMachineCpu();

}  // namespace silk::training
