// Launches N copies of a program as separate processes with torchrun-style
// variables (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK), and
// collects each one's exit code and output. Every child is killed at the
// deadline, so a hung rank fails the test instead of hanging it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace silk::testing {

struct ProcessResult {
  int exit_code = -1;  // -1: killed at the deadline; 128+N: died of signal N
  std::string output;  // stdout and stderr together
};

// `rank_env(rank)` adds per-rank variables on top of the common ones.
std::vector<ProcessResult> LaunchRanks(const std::string& program, const std::vector<std::string>& args, int ranks,
                                       absl::Duration timeout,
                                       const std::map<std::string, std::string>& extra_env = {},
                                       const std::map<int, std::vector<std::string>>& rank_args = {});

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();

}  // namespace silk::testing
