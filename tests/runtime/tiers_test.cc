// The start-up tier probe on in-process ranks over loopback: which pairs it
// measures, that every rank ends with the same table, and when it stays off.
#include "runtime/tiers.h"

#include "gtest/gtest.h"
#include "runtime/communicator.h"
#include "tests/support/ranks.h"

namespace silk {
namespace {

// Ranks 0-2 in region "a" (0 and 1 share node "n0", 2 is on "n1"), 3-4 in "b", 5 in "c".
Config Placed(int rank, bool probe) {
  Config c = testing::TestConfig();
  const char* regions[] = {"a", "a", "a", "b", "b", "c"};
  const char* nodes[] = {"n0", "n0", "n1", "n2", "n3", "n4"};
  c.region = regions[rank];
  c.node = nodes[rank];
  c.probe_tiers = probe;
  c.probe_bytes = 1 << 20;
  return c;
}

TEST(Tiers, RankZeroMeasuresOnePartnerPerTierAndEveryRankGetsTheTable) {
  auto comms = testing::CreateCommunicators(6, [](int rank) { return Placed(rank, true); });
  ASSERT_TRUE(comms.ok()) << comms.status();
  const Tiers& first = (*comms)[0]->tiers();
  ASSERT_TRUE(first.measured) << first.ToString();
  EXPECT_EQ(first.node.peer, 1);
  EXPECT_EQ(first.region.peer, 2);
  ASSERT_EQ(first.wan.size(), 2u);
  EXPECT_EQ(first.wan[0].peer, 3);
  EXPECT_EQ(first.wan[1].peer, 5);
  for (const TierCost* t : {&first.node, &first.region, &first.wan[0], &first.wan[1]}) {
    EXPECT_TRUE(t->present);
    EXPECT_GT(t->rtt_s, 0);
    EXPECT_LT(t->rtt_s, 1.0);  // loopback
    EXPECT_GT(t->bytes_per_s, 1e6);
  }
  for (const auto& comm : *comms) EXPECT_EQ(comm->tiers().ToString(), first.ToString()) << "rank " << comm->rank();
}

TEST(Tiers, AbsentTiersAreMarkedSo) {
  // Every rank on its own node, two regions: no node tier; region "a" has one rank.
  auto comms = testing::CreateCommunicators(2, [](int rank) {
    Config c = Placed(rank == 0 ? 0 : 3, true);
    c.node = rank == 0 ? "n0" : "n2";
    return c;
  });
  ASSERT_TRUE(comms.ok()) << comms.status();
  const Tiers& tiers = (*comms)[1]->tiers();
  ASSERT_TRUE(tiers.measured);
  EXPECT_FALSE(tiers.node.present);
  EXPECT_FALSE(tiers.region.present);
  ASSERT_EQ(tiers.wan.size(), 1u);
  EXPECT_TRUE(tiers.wan[0].present);
  EXPECT_TRUE(tiers.SlowestWan().present);
}

TEST(Tiers, ATableKeptAsBytesComesBackTheSame) {
  Tiers tiers;
  tiers.measured = true;
  tiers.node = {true, 1, 1e-4, 1e9, 1e9};
  tiers.wan = {{true, 3, 0.04, 1.25e8, 3e7}, {true, 4, 0.08, 2e7, 2e7, true}};
  absl::StatusOr<Tiers> back = DecodeTiers(EncodeTiers(tiers));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToString(), tiers.ToString());
  ASSERT_EQ(back->wan.size(), 2u);
  EXPECT_FALSE(back->wan[0].rate_settled);
  EXPECT_TRUE(back->wan[1].rate_settled);
  // A WAN rate from bursts that were still getting faster is named a lower bound.
  tiers.wan[1].rate_settled = false;
  EXPECT_NE(tiers.ToString().find("0.02 GB/s (still growing"), std::string::npos) << tiers.ToString();
  EXPECT_FALSE(DecodeTiers("not a table").ok());
}

// An elastic job's next membership: rank 0 sends the kept table instead of
// measuring when it covers every tier, and measures when it does not.
TEST(Tiers, AKeptTableIsSentInsteadOfMeasuringWhenItCoversEveryTier) {
  for (bool covers : {true, false}) {
    auto comms = testing::CreateCommunicators(6, [](int rank) { return Placed(rank, false); });
    ASSERT_TRUE(comms.ok()) << comms.status();
    Tiers kept;
    kept.measured = true;
    kept.node = kept.region = {true, 9, 0.5, 7e6, 7e6};  // a round trip no loopback has
    kept.wan = {{true, 9, 0.5, 7e6, 7e6}, {covers, 9, 0.5, 7e6, 7e6}};
    std::vector<Tiers> got(6);
    std::vector<absl::Status> results = testing::RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      absl::StatusOr<Tiers> t = ProbeTiers(comm, 1 << 20, absl::Seconds(30), comm.rank() == 0 ? &kept : nullptr);
      if (t.ok()) got[comm.rank()] = *t;
      return t.status();
    });
    for (const absl::Status& s : results) ASSERT_TRUE(s.ok()) << s;
    for (int r = 0; r < 6; ++r) EXPECT_EQ(got[r].ToString(), got[0].ToString()) << "rank " << r;
    EXPECT_EQ(got[0].node.rtt_s == 0.5, covers) << got[0].ToString();
    EXPECT_EQ(got[0].wan[1].peer, 5);  // this membership's partners, whatever the kept table said
  }
}

TEST(Tiers, OffInOneRegionAndWhenDisabled) {
  auto one_region = testing::CreateCommunicators(2, [](int rank) {
    Config c = Placed(rank, true);
    c.region = "a";
    return c;
  });
  ASSERT_TRUE(one_region.ok()) << one_region.status();
  EXPECT_FALSE((*one_region)[0]->tiers().measured);
  auto disabled = testing::CreateCommunicators(6, [](int rank) { return Placed(rank, false); });
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  EXPECT_FALSE((*disabled)[0]->tiers().measured);
  EXPECT_EQ((*disabled)[0]->tiers().ToString(), "tiers not measured");
}

}  // namespace
}  // namespace silk
