// Start-up faults as separate processes joined by the environment
// (torchrun-style) bootstrap: one rank started wrongly makes EVERY rank fail
// within a few seconds with that rank's reason, instead of waiting out a
// timeout; a rank that never comes is named at SILK_STARTUP_TIMEOUT; and
// ten initialisations in a row on one MASTER_PORT each join their own group.
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/processes.h"

namespace silk {
namespace {

constexpr int kRanks = 3;
constexpr char kWithin[] = "5";  // seconds: at once, not at a timeout (which is 60 s here)

std::string Spec(const char* name) { return absl::StrCat(SILK_SOURCE_DIR, "/cluster/specs/", name); }

struct Fault {
  const char* name;
  std::vector<std::string> common_args;  // every rank
  std::vector<std::string> faulty_args;  // rank 1 only
  const char* reason;                    // what every rank's error must say
};

// CTest shows the fault's name, not its bytes.
void PrintTo(const Fault& fault, std::ostream* os) { *os << fault.name; }

class StartupFaultTest : public ::testing::TestWithParam<Fault> {};

TEST_P(StartupFaultTest, EveryRankFailsAtOnceWithTheReason) {
  const Fault& fault = GetParam();
  std::vector<std::string> args = {"--expect-startup-failure", fault.reason, "--within", kWithin};
  args.insert(args.end(), fault.common_args.begin(), fault.common_args.end());
  const absl::Time start = absl::Now();
  auto results = testing::LaunchRanks(SILK_COLLECTIVE_CHECK, args, kRanks, absl::Seconds(50),
                                      {{"SILK_TIMEOUT", "60s"}}, {{1, fault.faulty_args}});
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << fault.name << ", rank " << r << ":\n" << results[r].output;
    EXPECT_NE(results[r].output.find("OK startup failure"), std::string::npos) << results[r].output;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << fault.name;
}

INSTANTIATE_TEST_SUITE_P(
    Faults, StartupFaultTest,
    ::testing::Values(
        Fault{"wrong_token", {"--env", "SILK_JOB_TOKEN=right"}, {"--env", "SILK_JOB_TOKEN=wrong"},
              "SILK_JOB_TOKEN: ranks 0, 2 use digest"},
        Fault{"token_on_one_rank_only", {}, {"--env", "SILK_JOB_TOKEN=mine"}, "SILK_JOB_TOKEN: ranks 0, 2 use none"},
        Fault{"missing_spec", {}, {"--env", "SILK_CLUSTER_SPEC=/nonexistent/spec.textproto"},
              "/nonexistent/spec.textproto"},
        Fault{"node_absent_from_spec",
              {"--env", "SILK_CLUSTER_SPEC=" + Spec("xinjiang-chongqing.textproto"), "--env", "SILK_NODE=xj1"},
              {"--env", "SILK_NODE=nowhere"},
              "node \"nowhere\" is not in the cluster spec"},
        Fault{"different_chunk_size", {}, {"--env", "SILK_CHUNK_BYTES=2097152"},
              "SILK_CHUNK_BYTES: ranks 0, 2 use 1048576; rank 1 uses 2097152"},
        Fault{"different_spec",
              {"--env", "SILK_CLUSTER_SPEC=" + Spec("xinjiang-chongqing.textproto"), "--env", "SILK_REGION=xinjiang"},
              {"--env", "SILK_CLUSTER_SPEC=" + Spec("three-regions.textproto")},
              "the cluster spec (SILK_CLUSTER_SPEC): ranks 0, 2 use"},
        Fault{"different_wan_lanes", {}, {"--env", "SILK_WAN_LANES=5"}, "SILK_WAN_LANES"},
        Fault{"unparsable_setting", {}, {"--env", "SILK_CHUNK_BYTES=lots"},
              "environment variable SILK_CHUNK_BYTES=\"lots\" is invalid"}),
    [](const ::testing::TestParamInfo<Fault>& info) { return std::string(info.param.name); });

// Rank 2 looks for the store on another port: the others give up at
// SILK_STARTUP_TIMEOUT (not SILK_TIMEOUT), naming rank 2 and why it may be absent.
TEST(StartupTimeoutTest, HonouredAndNamesTheMissingRank) {
  const absl::Time start = absl::Now();
  auto results = testing::LaunchRanks(
      SILK_COLLECTIVE_CHECK, {"--within", "6"}, kRanks, absl::Seconds(50),
      {{"SILK_TIMEOUT", "60s"}, {"SILK_STARTUP_TIMEOUT", "2s"}},
      {{0, {"--expect-startup-failure", "waiting for rank 2 of 3"}},
       {1, {"--expect-startup-failure", "rank 2 of 3"}},
       {2, {"--rank-env", "2", "MASTER_PORT=1", "--expect-startup-failure", "127.0.0.1:1"}}});
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << "rank " << r << ":\n" << results[r].output;
  }
  EXPECT_NE(results[0].output.find("start-up timeout 2s"), std::string::npos) << results[0].output;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// silk_init / all-reduce / silk_finalize ten times on one MASTER_PORT; rank 0
// (the store's host) leaves each round last, so the others reach its old
// store first and must wait for the new group instead of reading old addresses.
TEST(ReinitTest, TenRoundsOnOnePortEachJoinTheirOwnGroup) {
  const absl::Time start = absl::Now();
  auto results = testing::LaunchRanks(SILK_C_API_REINIT, {"10"}, kRanks, absl::Seconds(100), {{"SILK_TIMEOUT", "20s"}});
  for (size_t r = 0; r < results.size(); ++r) {
    EXPECT_EQ(results[r].exit_code, 0) << "rank " << r << ":\n" << results[r].output;
    EXPECT_NE(results[r].output.find("10 rounds OK"), std::string::npos) << results[r].output;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

}  // namespace
}  // namespace silk
