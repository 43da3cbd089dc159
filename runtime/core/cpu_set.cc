#include "runtime/core/cpu_set.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace silk {

absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CPU list \"%s\": %s (expected e.g. \"0\", \"0-3\" or \"0,2-3\")", text, why));
  };
  std::vector<int> cpus;
  if (absl::StripAsciiWhitespace(text).empty()) return invalid("empty");
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    std::vector<absl::string_view> ends = absl::StrSplit(part, absl::MaxSplits('-', 1));
    int first = 0, last = 0;
    if (!absl::SimpleAtoi(ends[0], &first) || first < 0) return invalid(absl::StrFormat("bad CPU \"%s\"", part));
    last = first;
    if (ends.size() == 2 && (!absl::SimpleAtoi(ends[1], &last) || last < first)) {
      return invalid(absl::StrFormat("bad range \"%s\"", part));
    }
    if (last >= CPU_SETSIZE) return invalid(absl::StrFormat("CPU %d is beyond %d", last, CPU_SETSIZE - 1));
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? absl::StrFormat("%d", cpus[i]) : absl::StrFormat("%d-%d", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out;
}

std::vector<int> ThreadCpus(int tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(tid, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

std::vector<int> ThisThreadCpus() { return ThreadCpus(0); }  // 0: the calling thread

std::vector<int> OnlineCpus() {
  std::ifstream in("/sys/devices/system/cpu/online");
  std::string line;
  if (std::getline(in, line)) {
    if (absl::StatusOr<std::vector<int>> cpus = ParseCpuList(line); cpus.ok()) return *cpus;
  }
  return ThisThreadCpus();
}

absl::Status PinThisThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return absl::InvalidArgumentError("pinning a thread to no CPU");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) CPU_SET(cpu, &set);
  if (int error = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); error != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("pinning a thread to CPUs %s: %s (this thread may run on %s)",
                                                      FormatCpuList(cpus), std::strerror(error),
                                                      FormatCpuList(ThisThreadCpus())));
  }
  return absl::OkStatus();
}

ScopedThreadCpus::ScopedThreadCpus(const std::vector<int>& cpus) {
  if (cpus.empty()) return;
  CPU_ZERO(&saved_);
  if (int error = pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_); error != 0) {
    status_ = absl::InternalError(absl::StrFormat("reading this thread's CPUs: %s", std::strerror(error)));
    return;
  }
  status_ = PinThisThread(cpus);
  pinned_ = status_.ok();
}

ScopedThreadCpus::~ScopedThreadCpus() {
  if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
}

}  // namespace silk
