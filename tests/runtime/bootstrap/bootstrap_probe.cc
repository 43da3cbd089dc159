// bootstrap_probe: one rank of a bootstrap test run as a real process.
//
//   bootstrap_probe [--timeout=30s] [--rounds=3]      torchrun-style (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE)
//   bootstrap_probe --mpi [--mpi-timeout-check]      under mpirun
//
// Each round AllGathers "rank|hostname|round|padding" and checks every entry.
// Prints "OK rank r/n" and exits 0, or prints "FAIL rank r: why" and exits 1.
// With --mpi-timeout-check, rank 0 then AllGathers alone, expects the timeout
// error, prints "OK timeout detected: ..." and leaves without finalising MPI
// (a collective stays pending); the other ranks wait to be ended by mpirun.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/core/config.h"

namespace {

using silk::bootstrap::Bootstrap;

struct Options {
  bool mpi = false;
  bool mpi_timeout_check = false;
  absl::Duration timeout = absl::Seconds(30);
  int rounds = 3;
};

std::string HostName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

std::string ValueOf(int rank, int round, const std::string& host) {
  // Sizes differ by rank and round so lengths and offsets are exercised.
  return absl::StrFormat("%d|%s|%d|%s", rank, host, round, std::string((rank * 131 + round * 17) % 500, 'p'));
}

// Checks that entry r of one round came from rank r.
absl::Status CheckValues(const std::vector<std::string>& values, int size, int round) {
  if (static_cast<int>(values.size()) != size) {
    return absl::InternalError(absl::StrFormat("round %d: got %d values for %d ranks", round, values.size(), size));
  }
  for (int r = 0; r < size; ++r) {
    std::vector<std::string> fields = absl::StrSplit(values[r], '|');
    if (fields.size() != 4 || fields[0] != absl::StrCat(r) || fields[1].empty() || fields[2] != absl::StrCat(round) ||
        values[r] != ValueOf(r, round, fields[1])) {
      return absl::InternalError(absl::StrFormat("round %d: entry %d is \"%s\"", round, r, values[r].substr(0, 80)));
    }
  }
  return absl::OkStatus();
}

int Fail(int rank, const absl::Status& status) {
  std::fprintf(stderr, "FAIL rank %d: %s\n", rank, std::string(status.ToString()).c_str());
  return 1;
}

int CheckTimeoutAndLeave(Bootstrap& bootstrap) {
  if (bootstrap.rank() != 0) {
    absl::SleepFor(absl::Seconds(60));  // mpirun ends us once rank 0 has left
    _exit(0);
  }
  auto alone = bootstrap.AllGather("alone", absl::Seconds(1));
  if (!absl::IsDeadlineExceeded(alone.status()) ||
      !absl::StrContains(alone.status().message(), "mpi bootstrap allgather timed out after 1s")) {
    return Fail(0, absl::InternalError(absl::StrCat("expected a timeout, got: ", alone.status().ToString())));
  }
  auto again = bootstrap.AllGather("again", absl::Seconds(1));
  if (again.ok()) return Fail(0, absl::InternalError("a broken MPI bootstrap answered again"));
  std::printf("OK timeout detected: %s\n", std::string(alone.status().message()).c_str());
  std::fflush(stdout);
  _exit(0);  // not exit(): MPI_Finalize would wait for the abandoned collective
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--mpi") {
      options.mpi = true;
    } else if (arg == "--mpi-timeout-check") {
      options.mpi_timeout_check = true;
    } else if (absl::StartsWith(arg, "--timeout=")) {
      auto timeout = silk::ParseDuration(arg.substr(10));
      if (!timeout.ok()) return Fail(-1, timeout.status());
      options.timeout = *timeout;
    } else if (!absl::StartsWith(arg, "--rounds=") || !absl::SimpleAtoi(arg.substr(9), &options.rounds)) {
      std::fprintf(stderr, "bootstrap_probe: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }

  absl::StatusOr<std::unique_ptr<Bootstrap>> bootstrap;
  if (options.mpi) {
    if (!silk::bootstrap::LaunchedByMpi()) return Fail(-1, absl::InternalError("--mpi without mpirun"));
    bootstrap = silk::bootstrap::CreateMpiBootstrap();
  } else {
    absl::StatusOr<silk::Config> config = silk::Config::FromEnvironment();
    if (!config.ok()) return Fail(-1, config.status());
    bootstrap = silk::bootstrap::CreateEnvBootstrap(*config);
  }
  if (!bootstrap.ok()) return Fail(-1, bootstrap.status());
  const int rank = (*bootstrap)->rank();
  const int size = (*bootstrap)->size();

  const std::string host = HostName();
  for (int round = 0; round < options.rounds; ++round) {
    auto values = (*bootstrap)->AllGather(ValueOf(rank, round, host), options.timeout);
    if (!values.ok()) return Fail(rank, values.status());
    absl::Status checked = CheckValues(*values, size, round);
    if (!checked.ok()) return Fail(rank, checked);
  }
  if (options.mpi_timeout_check) return CheckTimeoutAndLeave(**bootstrap);
  std::printf("OK rank %d/%d (%s)\n", rank, size, (*bootstrap)->Describe().c_str());
  return 0;
}
