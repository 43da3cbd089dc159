// The checks every rank makes on the others' start-up records (startup.h):
// pure functions of the records, so every rank reaches the same verdict.
#include "runtime/startup.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/core/error.h"

namespace silk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<RankInfo> HealthyRecords(int size) {
  std::vector<RankInfo> infos(size);
  for (int r = 0; r < size; ++r) {
    infos[r].set_rank(r);
    infos[r].set_node("node");
    infos[r].set_node_identity("node/machine/boot/netns:4:4026531840");
    infos[r].set_protocol_version(1);
    infos[r].set_lanes(2);
    infos[r].set_wan_lanes(2);
    infos[r].set_chunk_bytes(1 << 20);
    infos[r].set_shm(true);
  }
  return infos;
}

TEST(CheckAgreementTest, AgreeingRecordsPass) { EXPECT_TRUE(CheckAgreement(HealthyRecords(4)).ok()); }

TEST(CheckAgreementTest, NamesTheSettingAndWhichRanksUseWhichValue) {
  std::vector<RankInfo> infos = HealthyRecords(5);
  infos[3].set_chunk_bytes(2 << 20);
  infos[4].set_chunk_bytes(2 << 20);
  const absl::Status status = CheckAgreement(infos);
  EXPECT_EQ(KindOf(status), ErrorKind::kMismatch);
  EXPECT_THAT(status.message(), HasSubstr("SILK_CHUNK_BYTES: ranks 0-2 use 1048576; ranks 3, 4 use 2097152"));
}

TEST(CheckAgreementTest, EveryDisagreementIsListed) {
  std::vector<RankInfo> infos = HealthyRecords(2);
  infos[1].set_spec_digest("abcd");
  infos[1].set_spec_path("/specs/other.textproto");
  infos[1].set_token_digest("1234");
  infos[1].set_wan_lanes(6);
  infos[1].set_protocol_version(2);
  infos[1].set_fast_path(true);
  const std::string message(CheckAgreement(infos).message());
  EXPECT_THAT(message, HasSubstr("wire protocol version"));
  EXPECT_THAT(message, HasSubstr("SILK_JOB_TOKEN: rank 0 uses none; rank 1 uses digest 1234"));
  EXPECT_THAT(message, HasSubstr("rank 0 uses none; rank 1 uses /specs/other.textproto (digest abcd)"));
  EXPECT_THAT(message, HasSubstr("SILK_WAN_LANES"));
  EXPECT_THAT(message, HasSubstr("SILK_FAST_PATH: rank 0 uses 0; rank 1 uses 1"));
}

TEST(CheckAgreementTest, SameSpecUnderAnotherPathAgrees) {
  std::vector<RankInfo> infos = HealthyRecords(2);
  infos[0].set_spec_digest("abcd");
  infos[0].set_spec_path("/a/spec.textproto");
  infos[1].set_spec_digest("abcd");
  infos[1].set_spec_path("/b/copy.textproto");
  EXPECT_TRUE(CheckAgreement(infos).ok());
}

TEST(PublishedStartupFailureTest, TheLowestFailedRanksReasonWithItsKind) {
  std::vector<RankInfo> infos = HealthyRecords(4);
  EXPECT_TRUE(PublishedStartupFailure(infos, 0).ok());
  infos[2].set_startup_error("cluster spec /x: cannot open the file");
  infos[2].set_startup_error_kind(static_cast<int>(ErrorKind::kInvalidArgument));
  infos[3].set_startup_error("SILK_CPUS: no such CPU");
  const absl::Status status = PublishedStartupFailure(infos, 1);
  EXPECT_EQ(KindOf(status), ErrorKind::kPeerLost);
  EXPECT_THAT(status.message(), HasSubstr("rank 2 could not start, so rank 1 cannot either: invalid argument: "
                                          "cluster spec /x: cannot open the file"));
  EXPECT_THAT(status.message(), HasSubstr("ranks 2, 3 all failed at start-up"));
}

TEST(PlacementNodeNamesTest, OneNameOnTwoMachinesOrNamespacesIsTwoNodes) {
  std::vector<RankInfo> infos = HealthyRecords(5);
  infos[1].set_node_identity("node/machine/boot/netns:4:4026532999");  // same host name, another namespace
  infos[3].set_node_identity("node/machine/boot/netns:4:4026532999");
  infos[4].set_node("other");
  EXPECT_THAT(PlacementNodeNames(infos), ElementsAre("node", "node#2", "node", "node#2", "other"));
}

TEST(PlacementNodeNamesTest, DistinctNamesStayAsTheyAre) {
  std::vector<RankInfo> infos = HealthyRecords(3);
  infos[1].set_node("b");  // SILK_NODE may split one machine into several nodes
  infos[2].set_node("c");
  EXPECT_THAT(PlacementNodeNames(infos), ElementsAre("node", "b", "c"));
}

}  // namespace
}  // namespace silk
