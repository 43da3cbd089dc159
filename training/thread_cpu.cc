#include "training/thread_cpu.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/core/cpu_set.h"

namespace silk::training {

std::vector<ThreadCpu> ReadThreadCpuTimes() {
  std::vector<ThreadCpu> threads;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return threads;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    // "tid (comm) state ppid ..." - comm may hold spaces and parentheses; it ends at the last ')'.
    size_t open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    ThreadCpu t;
    t.tid = std::atoi(line.c_str());
    t.name = line.substr(open + 1, close - open - 1);
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    // Fields after comm start at 3 (state); utime is field 14, stime 15.
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) t.user_s = std::strtod(field.c_str(), nullptr) / ticks;
      if (i == 15) t.system_s = std::strtod(field.c_str(), nullptr) / ticks;
    }
    t.cpus = ThreadCpus(t.tid);
    threads.push_back(t);
  }
  closedir(dir);
  return threads;
}

std::string ThreadsCpus(const std::vector<ThreadCpu>& threads, const std::string& name) {
  const bool prefix = !name.empty() && name.back() == '*';
  const std::string stem = prefix ? name.substr(0, name.size() - 1) : name;
  std::set<int> cpus;
  for (const ThreadCpu& t : threads) {
    if (prefix ? t.name.rfind(stem, 0) == 0 : t.name == stem) cpus.insert(t.cpus.begin(), t.cpus.end());
  }
  return FormatCpuList(std::vector<int>(cpus.begin(), cpus.end()));
}

CpuSummary SummarizeThreadCpu(const std::vector<ThreadCpu>& threads) {
  CpuSummary summary;
  for (const ThreadCpu& t : threads) {
    (t.name.rfind("silk-", 0) == 0 ? summary.silk_s : summary.other_s) += t.user_s + t.system_s;
  }
  return summary;
}

MachineCpu ReadMachineCpu() {
  MachineCpu cpu;
  std::ifstream in("/proc/stat");
  std::string label;
  if (!(in >> label) || label != "cpu") return cpu;
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  double v[8] = {};
  for (double& x : v) in >> x;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  cpu.busy_s = (v[0] + v[1] + v[2] + v[5] + v[6]) / ticks;
  cpu.idle_s = (v[3] + v[4]) / ticks;
  cpu.steal_s = v[7] / ticks;
  return cpu;
}

}  // namespace silk::training
