// Real-time scheduling for the virtual cluster's timing-critical threads: the
// WAN emulator's delivery loop, and a probe's round-trip timestamps. On a busy
// machine (a compiler beside the tests) an ordinary thread can wait several
// milliseconds for a CPU, which would read as WAN latency that is not there.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace silk::cluster {

// Probes run below the emulator: they must never delay the packets they time.
inline constexpr int kEmulatorPriority = 10;
inline constexpr int kProbePriority = 5;

// Moves the calling thread to SCHED_FIFO at `priority` and to a 1 ns timer
// slack (sleeps due to the microsecond). Returns "" on success, else why not
// (not root, or the container forbids it): the caller warns and goes on.
inline std::string RunThreadAtRealTimePriority(int priority) {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  sched_param param{};
  param.sched_priority = priority;
  const int error = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
  return error == 0 ? std::string() : std::string(std::strerror(error));
}

}  // namespace silk::cluster
