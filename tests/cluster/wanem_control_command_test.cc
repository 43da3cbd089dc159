// The WAN emulator's control language.
#include "cluster/wanem/control_command.h"

#include "gtest/gtest.h"

namespace silk::cluster::wanem {
namespace {

TEST(ControlCommandTest, ParsesSetWithEverySetting) {
  auto command = ParseControlCommand("set xinjiang chongqing rtt=80ms rate=300mbit loss=0.1% jitter=1ms queue=4000\n");
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->kind, ControlCommand::Kind::kSet);
  EXPECT_EQ(command->region_a, "xinjiang");
  EXPECT_EQ(command->region_b, "chongqing");
  EXPECT_DOUBLE_EQ(*command->rtt_ms, 80);
  EXPECT_DOUBLE_EQ(*command->rate_bps, 300e6);
  EXPECT_DOUBLE_EQ(*command->loss, 0.001);
  EXPECT_DOUBLE_EQ(*command->jitter_ms, 1);
  EXPECT_EQ(*command->queue_bytes, 4000u);
}

TEST(ControlCommandTest, SetChangesOnlyWhatItNames) {
  auto command = ParseControlCommand("set a b loss=0.02");
  ASSERT_TRUE(command.ok());
  EXPECT_DOUBLE_EQ(*command->loss, 0.02);
  EXPECT_FALSE(command->rtt_ms.has_value());
  EXPECT_FALSE(command->rate_bps.has_value());
  auto unlimited = ParseControlCommand("set a b rate=unlimited rtt=0.5s");
  ASSERT_TRUE(unlimited.ok());
  EXPECT_EQ(*unlimited->rate_bps, 0);
  EXPECT_DOUBLE_EQ(*unlimited->rtt_ms, 500);
}

TEST(ControlCommandTest, ParsesAPolicerAndOneDirection) {
  auto policed = ParseControlCommand("set a b rate=1gbit policer=500000");
  ASSERT_TRUE(policed.ok()) << policed.status();
  EXPECT_EQ(*policed->policer_burst_bytes, 500000u);
  EXPECT_FALSE(policed->one_way);
  auto one_way = ParseControlCommand("set xinjiang>chongqing rate=500mbit");
  ASSERT_TRUE(one_way.ok()) << one_way.status();
  EXPECT_TRUE(one_way->one_way);
  EXPECT_EQ(one_way->region_a, "xinjiang");
  EXPECT_EQ(one_way->region_b, "chongqing");
  EXPECT_DOUBLE_EQ(*one_way->rate_bps, 500e6);
}

TEST(ControlCommandTest, ParsesSimpleVerbs) {
  EXPECT_EQ(ParseControlCommand("ping")->kind, ControlCommand::Kind::kPing);
  EXPECT_EQ(ParseControlCommand(" stats ")->kind, ControlCommand::Kind::kStats);
  auto cut = ParseControlCommand("cut a b");
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->kind, ControlCommand::Kind::kCut);
  EXPECT_EQ(ParseControlCommand("heal a b")->kind, ControlCommand::Kind::kHeal);
}

TEST(ControlCommandTest, RejectsBadInputWithAClearMessage) {
  struct Case {
    const char* line;
    const char* message;
  } cases[] = {
      {"", "empty line"},
      {"explode a b", "unknown verb \"explode\""},
      {"cut a", "needs two region names"},
      {"cut a b c", "takes only two region names"},
      {"stats now", "takes no arguments"},
      {"set a b", "needs at least one of"},
      {"set a b rtt=fast", "rtt=\"fast\" is invalid"},
      {"set a b rtt=-5ms", "rtt=\"-5ms\" is invalid"},
      {"set a b rate=lots", "rate=\"lots\" is invalid"},
      {"set a b loss=1.5", "loss=\"1.5\" is invalid"},
      {"set a b loss=100%", "loss=\"100%\" is invalid"},
      {"set a b queue=-1", "queue=\"-1\" is invalid"},
      {"set a b color=red", "unknown setting \"color=red\""},
      {"set a b rtt", "rtt=\"\" is invalid"},
      {"set a b policer=big", "policer=\"big\" is invalid"},
      {"set a> rate=1gbit", "is not FROM>TO"},
      {"set a>b", "needs at least one of"},
      {"\xff\xfe\x01 garbage", "unknown verb"},
  };
  for (const Case& c : cases) {
    auto command = ParseControlCommand(c.line);
    ASSERT_FALSE(command.ok()) << "accepted: " << c.line;
    EXPECT_NE(command.status().message().find(c.message), std::string::npos)
        << c.line << " -> " << command.status().message();
  }
}

}  // namespace
}  // namespace silk::cluster::wanem
