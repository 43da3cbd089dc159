// Which CPUs a thread may run on. A job whose compute and communication share
// a machine's cores can keep them apart, as on a GPU node, where the
// accelerators compute while the host CPU moves the bytes: Silk's threads go
// to SILK_CPUS, the training loop pins its own to the others (silk-train
// --compute-cpus), and neither preempts the other.
#pragma once

#include <sched.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace silk {

// Linux's CPU list format, as in /sys/devices/system/cpu/online or taskset -c:
// "0", "0-3", "0,2-3,8". The result is sorted and has no duplicates.
absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text);
// The inverse: {0, 1, 2, 3, 8} -> "0-3,8".
std::string FormatCpuList(const std::vector<int>& cpus);

// The CPUs the thread `tid` of this process may run on now (empty where it is
// gone); ThisThreadCpus() for the calling thread.
std::vector<int> ThreadCpus(int tid);
std::vector<int> ThisThreadCpus();
// The machine's online CPUs (/sys/devices/system/cpu/online); where that is
// unreadable, the calling thread's.
std::vector<int> OnlineCpus();
// Pins the calling thread to `cpus`. An error names the CPUs and why.
absl::Status PinThisThread(const std::vector<int>& cpus);

// Pins the calling thread to `cpus` for the guard's lifetime, then restores
// its CPUs. Every thread it starts meanwhile inherits `cpus` (Linux copies a
// thread's affinity into the threads it creates), which is how a communicator
// places all of its threads. Empty `cpus`: does nothing.
class ScopedThreadCpus {
 public:
  explicit ScopedThreadCpus(const std::vector<int>& cpus);
  ~ScopedThreadCpus();
  ScopedThreadCpus(const ScopedThreadCpus&) = delete;
  ScopedThreadCpus& operator=(const ScopedThreadCpus&) = delete;

  const absl::Status& status() const { return status_; }

 private:
  bool pinned_ = false;
  cpu_set_t saved_;
  absl::Status status_;
};

}  // namespace silk
