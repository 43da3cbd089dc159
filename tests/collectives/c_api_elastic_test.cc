// The C API's elastic calls, as real processes around a coordinator: a member
// is killed and the others shrink through silk_comm_shrink and finish.
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/bootstrap/tcp_store.h"
#include "tests/support/processes.h"

namespace silk {
namespace {

TEST(CApiElastic, SurvivorsShrinkAndFinish) {
  auto coordinator = bootstrap::TcpStoreServer::Start("127.0.0.1", 0);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const auto results = testing::LaunchRanks(
      SILK_C_ELASTIC_MEMBER, {}, 4, absl::Seconds(60),
      {{"SILK_ELASTIC", "1"}, {"MASTER_PORT", absl::StrCat((*coordinator)->port())}, {"SILK_TIMEOUT", "30s"},
       {"SILK_ELASTIC_DEAD_AFTER", "1s"}});
  EXPECT_EQ(results[2].exit_code, 128 + 9) << results[2].output;
  for (int r : {0, 1, 3}) {
    ASSERT_EQ(results[r].exit_code, 0) << "member " << r << ":\n" << results[r].output;
    EXPECT_NE(results[r].output.find(absl::StrCat("RESULT member=", r, " size=3 epoch=2 shrinks=1")),
              std::string::npos)
        << results[r].output;
  }
}

// Without an elastic launch the calls refuse, and say why.
TEST(CApiElastic, ShrinkRefusedWithoutAnElasticLaunch) {
  const auto results = testing::LaunchRanks(SILK_C_NOT_ELASTIC, {}, 2, absl::Seconds(60), {{"SILK_TIMEOUT", "30s"}});
  for (const auto& r : results) {
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("not an elastic launch"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace silk
