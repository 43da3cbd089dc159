// CreateEnvBootstrap as real separate processes: bootstrap_probe launched once
// per rank with torchrun's variables, over loopback.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/core/config.h"
#include "tests/runtime/bootstrap/store_test_util.h"

extern char** environ;

namespace silk::bootstrap {
namespace {

using ::silk::bootstrap::testing::UnusedLoopbackPort;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Probe {
  int rank = -1;
  pid_t pid = -1;
  std::string output_path;
  int exit_code = -1;  // -1: killed at the deadline or by a signal
  std::string output;
};

// Our environment minus any launch variables the test runner may have set.
std::vector<std::string> CleanEnvironment() {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string variable = *entry;
    bool launch = false;
    for (const char* prefix : {"MASTER_ADDR=", "MASTER_PORT=", "RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "SILK_TIMEOUT=",
                               "OMPI_", "PMIX_", "PMI_"}) {
      launch |= absl::StartsWith(variable, prefix);
    }
    if (!launch) env.push_back(variable);
  }
  return env;
}

Probe Launch(int rank, int world_size, uint16_t port, const std::vector<std::string>& args) {
  static int launched = 0;
  Probe probe;
  probe.rank = rank;
  probe.output_path = absl::StrCat(::testing::TempDir(), "/bootstrap_probe.", getpid(), ".", launched++, ".log");
  std::vector<std::string> env = CleanEnvironment();
  env.push_back("MASTER_ADDR=127.0.0.1");
  env.push_back(absl::StrCat("MASTER_PORT=", port));
  env.push_back(absl::StrCat("RANK=", rank));
  env.push_back(absl::StrCat("WORLD_SIZE=", world_size));
  env.push_back("SILK_TIMEOUT=30s");  // bounds connecting to rank 0
  std::vector<std::string> argv_strings = {SILK_BOOTSTRAP_PROBE};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());

  // Everything the child needs is built before fork(): after it, only exec.
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  int output = open(probe.output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(output, 0) << "cannot create " << probe.output_path;
  probe.pid = fork();
  if (probe.pid == 0) {
    dup2(output, STDOUT_FILENO);
    dup2(output, STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(output);
  EXPECT_GT(probe.pid, 0) << "fork failed";
  return probe;
}

// Waits for every probe until `timeout`, then kills the stragglers.
void WaitAll(std::vector<Probe>& probes, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (Probe& probe : probes) {
    if (probe.pid <= 0) continue;
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(probe.pid, &status, WNOHANG)) == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (done == 0) {
      ADD_FAILURE() << "probe rank " << probe.rank << " still running at the deadline; killing it";
      kill(probe.pid, SIGKILL);
      waitpid(probe.pid, &status, 0);
    } else if (done > 0 && WIFEXITED(status)) {
      probe.exit_code = WEXITSTATUS(status);
    }
    std::ifstream file(probe.output_path);
    std::stringstream text;
    text << file.rdbuf();
    probe.output = text.str();
    unlink(probe.output_path.c_str());
  }
}

TEST(EnvBootstrapTest, FourProcessesRendezvous) {
  const uint16_t port = UnusedLoopbackPort();
  std::vector<Probe> probes;
  for (int rank = 0; rank < 4; ++rank) probes.push_back(Launch(rank, 4, port, {}));
  WaitAll(probes, absl::Seconds(120));
  for (const Probe& probe : probes) {
    EXPECT_EQ(probe.exit_code, 0) << "rank " << probe.rank << " output:\n" << probe.output;
    EXPECT_THAT(probe.output, HasSubstr(absl::StrCat("OK rank ", probe.rank, "/4")));
  }
}

TEST(EnvBootstrapTest, OthersWaitForARankZeroThatStartsLast) {
  const uint16_t port = UnusedLoopbackPort();
  std::vector<Probe> probes;
  for (int rank = 1; rank < 4; ++rank) probes.push_back(Launch(rank, 4, port, {}));
  absl::SleepFor(absl::Milliseconds(500));
  probes.push_back(Launch(0, 4, port, {}));
  WaitAll(probes, absl::Seconds(120));
  for (const Probe& probe : probes) {
    EXPECT_EQ(probe.exit_code, 0) << "rank " << probe.rank << " output:\n" << probe.output;
  }
}

TEST(EnvBootstrapTest, ARankThatNeverStartsIsNamedByTheOthers) {
  const uint16_t port = UnusedLoopbackPort();
  std::vector<Probe> probes;
  for (int rank = 0; rank < 3; ++rank) probes.push_back(Launch(rank, 4, port, {"--timeout=2s"}));
  WaitAll(probes, absl::Seconds(120));
  for (const Probe& probe : probes) {
    EXPECT_EQ(probe.exit_code, 1) << "rank " << probe.rank << " output:\n" << probe.output;
    // Rank 0 times out; the others time out too or, when rank 0 left first
    // and took the store with it, hear from the store what was missing.
    if (probe.rank == 0) {
      EXPECT_THAT(probe.output, HasSubstr("bootstrap allgather #0 timed out after 2s waiting for rank 3 of 4"));
    }
    EXPECT_THAT(probe.output, HasSubstr("waiting for rank 3 of 4"));
    EXPECT_THAT(probe.output, HasSubstr(absl::StrCat("tcp-store 127.0.0.1:", port)));
  }
}

TEST(EnvBootstrapTest, MissingVariablesAreNamed) {
  Config config;  // nothing set
  auto bootstrap = CreateEnvBootstrap(config);
  ASSERT_TRUE(absl::IsInvalidArgument(bootstrap.status())) << bootstrap.status();
  EXPECT_THAT(bootstrap.status().message(), HasSubstr("MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE"));

  config.master_addr = "127.0.0.1";
  config.env_rank = 0;
  config.env_world_size = 2;
  bootstrap = CreateEnvBootstrap(config);
  ASSERT_TRUE(absl::IsInvalidArgument(bootstrap.status())) << bootstrap.status();
  EXPECT_THAT(bootstrap.status().message(), HasSubstr("variable MASTER_PORT not set"));
}

TEST(EnvBootstrapTest, RankMustBeBelowWorldSize) {
  Config config;
  config.master_addr = "127.0.0.1";
  config.master_port = 29500;
  config.env_rank = 2;
  config.env_world_size = 2;
  auto bootstrap = CreateEnvBootstrap(config);
  ASSERT_TRUE(absl::IsInvalidArgument(bootstrap.status())) << bootstrap.status();
  EXPECT_THAT(bootstrap.status().message(), HasSubstr("RANK=2 is not below WORLD_SIZE=2"));
}

TEST(EnvBootstrapTest, UnreachableMasterFailsAtTheConnectTimeoutNamingIt) {
  Config config;
  config.master_addr = "127.0.0.1";
  config.master_port = UnusedLoopbackPort();
  config.env_rank = 1;
  config.env_world_size = 2;
  config.timeout = absl::Milliseconds(300);
  auto bootstrap = CreateEnvBootstrap(config);
  ASSERT_TRUE(absl::IsDeadlineExceeded(bootstrap.status())) << bootstrap.status();
  EXPECT_THAT(bootstrap.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", config.master_port)));
  EXPECT_THAT(bootstrap.status().message(), HasSubstr("rank 1 of 2"));
}

// Re-initialisation on one MASTER_PORT: rank 1 of the new group reaches the
// previous group's store, which rank 0 has not closed yet. It must wait there,
// follow rank 0 to its new store on the same port, and gather the new
// group's values, never the old ones.
TEST(EnvBootstrapTest, ARankOnThePreviousGroupsStoreFollowsRankZeroToTheNewOne) {
  const uint16_t port = UnusedLoopbackPort();
  auto config_for = [&](int rank) {
    Config config;
    config.master_addr = "127.0.0.1";
    config.master_port = port;
    config.env_rank = rank;
    config.env_world_size = 2;
    config.timeout = absl::Seconds(20);
    return config;
  };
  auto old_zero = CreateEnvBootstrap(config_for(0));
  ASSERT_TRUE(old_zero.ok()) << old_zero.status();
  std::thread old_one([&] {
    auto bootstrap = CreateEnvBootstrap(config_for(1));
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    ASSERT_TRUE((*bootstrap)->AllGather("old 1", absl::Seconds(20)).ok());
  });
  ASSERT_TRUE((*old_zero)->AllGather("old 0", absl::Seconds(20)).ok());
  old_one.join();

  absl::StatusOr<std::vector<std::string>> one_got;
  std::thread new_one([&] {
    auto bootstrap = CreateEnvBootstrap(config_for(1));  // the old store still listens on the port
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    one_got = (*bootstrap)->AllGather("new 1", absl::Seconds(20));
  });
  absl::SleepFor(absl::Milliseconds(300));
  old_zero->reset();  // rank 0 closes the previous group's store, then hosts the new one
  auto new_zero = CreateEnvBootstrap(config_for(0));
  ASSERT_TRUE(new_zero.ok()) << new_zero.status();
  auto zero_got = (*new_zero)->AllGather("new 0", absl::Seconds(20));
  new_one.join();
  ASSERT_TRUE(zero_got.ok()) << zero_got.status();
  EXPECT_THAT(*zero_got, ElementsAre("new 0", "new 1"));
  ASSERT_TRUE(one_got.ok()) << one_got.status();
  EXPECT_THAT(*one_got, ElementsAre("new 0", "new 1"));
}

}  // namespace
}  // namespace silk::bootstrap
