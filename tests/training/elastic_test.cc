// Elastic jobs as real processes on loopback: a coordinator, members that are
// SIGKILLed at several points of an operation, survivors that shrink and go
// on, and a restarted member admitted again with the state streamed to it.
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/bootstrap/tcp_store.h"
#include "tests/support/processes.h"

namespace silk {
namespace {

struct Result {
  int member = -1, epoch = 0, size = 0, step = -1, lost = 0, joined = 0;
  std::string digest;
};

bool Parse(const std::string& output, Result* r) {
  std::smatch m;
  static const std::regex re(
      "RESULT member=(\\d+) epoch=(\\d+) size=(\\d+) step=(\\d+) digest=([0-9a-f]+) lost=(\\d+) joined=(\\d+)");
  if (!std::regex_search(output, m, re)) return false;
  r->member = std::stoi(m[1]);
  r->epoch = std::stoi(m[2]);
  r->size = std::stoi(m[3]);
  r->step = std::stoi(m[4]);
  r->digest = m[5];
  r->lost = std::stoi(m[6]);
  r->joined = std::stoi(m[7]);
  return true;
}

class ElasticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = bootstrap::TcpStoreServer::Start("127.0.0.1", 0);
    ASSERT_TRUE(server.ok()) << server.status();
    coordinator_ = *std::move(server);
  }
  // `world` members; extra processes (restarts) come after them in `args`.
  std::vector<testing::ProcessResult> Run(int world, int processes, const std::vector<std::string>& args,
                                          const std::map<int, std::vector<std::string>>& per_process = {}) {
    std::map<std::string, std::string> env = {{"SILK_ELASTIC", "1"},
                                              {"MASTER_PORT", absl::StrCat(coordinator_->port())},
                                              {"WORLD_SIZE", absl::StrCat(world)},
                                              {"SILK_ELASTIC_DEAD_AFTER", "1s"},
                                              {"SILK_TIMEOUT", "30s"}};
    return testing::LaunchRanks(SILK_ELASTIC_MEMBER, args, processes, absl::Seconds(100), env, per_process);
  }
  std::unique_ptr<bootstrap::TcpStoreServer> coordinator_;
};

// Survivors of a member killed before, during and after an operation finish
// every step, agree on the state, and number the steps without a gap.
class ShrinkTest : public ElasticTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(ShrinkTest, SurvivorsGoOnWithTheSameState) {
  std::vector<std::string> args = {"--steps", "30", "--die-member", "2", "--die-at", "10"};
  if (std::string(GetParam()) == "after") args.push_back("--die-after-op");
  const auto results = Run(4, 4, args);
  std::string digest;
  for (int r = 0; r < 4; ++r) {
    if (r == 2) {
      EXPECT_EQ(results[r].exit_code, 128 + 9) << results[r].output;
      continue;
    }
    Result got;
    ASSERT_EQ(results[r].exit_code, 0) << "member " << r << ":\n" << results[r].output;
    ASSERT_TRUE(Parse(results[r].output, &got)) << results[r].output;
    EXPECT_EQ(got.size, 3);
    EXPECT_EQ(got.step, 30);
    EXPECT_GE(got.epoch, 2);
    EXPECT_EQ(got.lost, 1);
    if (digest.empty()) digest = got.digest;
    EXPECT_EQ(got.digest, digest) << "member " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(KillPoints, ShrinkTest, ::testing::Values("before", "after"));

// A member killed, then started again by its launcher, is admitted, receives
// the state bit for bit, and finishes with the others.
TEST_F(ElasticTest, RestartedMemberRejoinsWithTheState) {
  const auto results = Run(3, 4, {"--steps", "120", "--die-member", "1", "--die-at", "5"},
                           {{3, {"--as-member", "1", "--incarnation", "1", "--start-after-ms", "1500"}}});
  EXPECT_EQ(results[1].exit_code, 128 + 9) << results[1].output;
  std::string digest;
  for (int p : {0, 2, 3}) {
    Result got;
    ASSERT_EQ(results[p].exit_code, 0) << "process " << p << ":\n" << results[p].output;
    ASSERT_TRUE(Parse(results[p].output, &got)) << results[p].output;
    EXPECT_EQ(got.size, 3) << results[p].output;
    EXPECT_EQ(got.step, 120);
    if (p != 3) {  // the survivors saw member 1 leave and come back
      EXPECT_EQ(got.lost, 1);
      EXPECT_EQ(got.joined, 1);
    }
    if (digest.empty()) digest = got.digest;
    EXPECT_EQ(got.digest, digest) << "process " << p;
  }
}

}  // namespace
}  // namespace silk
