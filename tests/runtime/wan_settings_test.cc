// Sizing the connections between regions (runtime/wan_settings.h): from a
// declared link, before anything is measured, and from what the start-up probe
// measured; explicit settings win.
#include "runtime/wan_settings.h"

#include "gtest/gtest.h"

namespace silk {
namespace {

constexpr size_t kMB = size_t{1} << 20;

cluster::Link Declared(double rate_bps, double rtt_ms) {
  cluster::Link link;
  link.set_bandwidth_bps(static_cast<uint64_t>(rate_bps));
  link.set_rtt_ms(rtt_ms);
  return link;
}

TierCost Probed(double rtt_s, double bytes_per_s, bool settled) {
  TierCost t;
  t.present = true;
  t.rtt_s = rtt_s;
  t.bytes_per_s = t.probed_bytes_per_s = bytes_per_s;
  t.rate_settled = settled;
  return t;
}

TEST(WanSettings, ADeclaredLinkSizesLanesAndBuffersForTwiceItsBdp) {
  const Config config;
  const cluster::Link link = Declared(1e9, 40);  // BDP 5 MB: 3 lanes of 3.3 MB
  const WanSettings wan = OpeningWanSettings(config, &link);
  EXPECT_EQ(wan.lanes, 3);
  EXPECT_NEAR(wan.socket.buffer_bytes, 2 * 5e6 / 3, 1);
  EXPECT_EQ(wan.socket.congestion, "bbr");
  // Nothing is re-sized after the probe: the spec's link stands.
  EXPECT_FALSE(MeasuredWanBuffer(config, wan.lanes, &link, Probed(0.040, 1e6, true)).has_value());
}

TEST(WanSettings, WithoutASpecLanesOpenWithTheLargestBuffers) {
  const Config config;  // hints: 10 Gbit/s, 1 ms
  const WanSettings wan = OpeningWanSettings(config, nullptr);
  EXPECT_EQ(wan.lanes, 2);
  EXPECT_EQ(wan.socket.buffer_bytes, kMaxWanSocketBuffer);
}

TEST(WanSettings, AfterTheProbeBuffersFollowTheMeasuredRoundTripAndSettledRate) {
  const Config config;
  // 1 Gbit/s settled at 40 ms: sized for 1.5 Gbit/s, 2 * 7.5 MB over 2 lanes.
  std::optional<size_t> bytes = MeasuredWanBuffer(config, 2, nullptr, Probed(0.040, 1.25e8, true));
  ASSERT_TRUE(bytes.has_value());
  EXPECT_NEAR(*bytes, 7.5e6, 1);
  // A short path: a lane never goes below the floor.
  bytes = MeasuredWanBuffer(config, 2, nullptr, Probed(0.002, 1.25e8, true));
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(*bytes, kMinWanSocketBuffer);
  // 100 Mbit/s at 80 ms, 4 lanes: 2 * 1.5 MB / 4, at the floor; at 300 ms, 2.8 MB.
  EXPECT_EQ(*MeasuredWanBuffer(config, 4, nullptr, Probed(0.080, 1.25e7, true)), kMinWanSocketBuffer);
  EXPECT_NEAR(*MeasuredWanBuffer(config, 4, nullptr, Probed(0.300, 1.25e7, true)), 2 * 1.5 * 1.25e7 * 0.3 / 4, 1);
}

TEST(WanSettings, AnUnsettledRateIsALowerBoundSizedForAtLeastTheHint) {
  Config config;
  // Still growing at 20 MB/s: sized for the hint (10 Gbit/s) instead, bounded.
  EXPECT_EQ(*MeasuredWanBuffer(config, 2, nullptr, Probed(0.040, 2e7, false)), kMaxWanSocketBuffer);
  config.link_rate_bps = 1e9;
  EXPECT_NEAR(*MeasuredWanBuffer(config, 2, nullptr, Probed(0.040, 2e7, false)), 5e6, 1);
  // A lower bound above the hint counts as it is.
  EXPECT_NEAR(MeasuredWanLink(config, Probed(0.040, 2.5e8, false)).rate_bps, 2e9, 1);
}

TEST(WanSettings, ExplicitLanesAndBuffersWin) {
  Config config;
  config.wan_lanes = 5;
  config.socket_buffer_bytes = 3 * kMB;
  const cluster::Link link = Declared(1e9, 40);
  for (const cluster::Link* declared : {&link, static_cast<const cluster::Link*>(nullptr)}) {
    const WanSettings wan = OpeningWanSettings(config, declared);
    EXPECT_EQ(wan.lanes, 5);
    EXPECT_EQ(wan.socket.buffer_bytes, 3 * kMB);
    EXPECT_FALSE(MeasuredWanBuffer(config, wan.lanes, declared, Probed(0.040, 1.25e8, true)).has_value());
  }
}

TEST(WanSettings, NothingMeasuredChangesNothing) {
  const Config config;
  EXPECT_FALSE(MeasuredWanBuffer(config, 2, nullptr, TierCost{}).has_value());
}

}  // namespace
}  // namespace silk
