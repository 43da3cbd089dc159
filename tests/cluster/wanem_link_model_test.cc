// The WAN emulator's link model, driven with synthetic time.
#include "cluster/wanem/link_model.h"

#include <cmath>

#include "gtest/gtest.h"

namespace silk::cluster::wanem {
namespace {

constexpr int64_t kMs = 1'000'000;

LinkParams Shaped(double rate_bps, double rtt_ms) {
  LinkParams params;
  params.rate_bps = rate_bps;
  params.rtt_ms = rtt_ms;
  params.mtu = 1500;
  return params;
}

TEST(LinkModelTest, IdleLinkDeliversAfterSerializationAndHalfTheRtt) {
  LinkDirection link(Shaped(8e6, 40), 1);  // 1 byte per microsecond
  auto admitted = link.Admit(100 * kMs, 1000);
  ASSERT_TRUE(admitted.accepted);
  EXPECT_EQ(admitted.deliver_at_ns, 100 * kMs + 1 * kMs + 20 * kMs);
}

TEST(LinkModelTest, BackToBackPacketsAreSpacedByTheRate) {
  LinkDirection link(Shaped(8e6, 0), 1);
  int64_t previous = 0;
  for (int i = 0; i < 10; ++i) {
    auto admitted = link.Admit(0, 1000);
    ASSERT_TRUE(admitted.accepted);
    EXPECT_EQ(admitted.deliver_at_ns, (i + 1) * kMs);
    EXPECT_GT(admitted.deliver_at_ns, previous);
    previous = admitted.deliver_at_ns;
  }
  EXPECT_EQ(link.BacklogBytes(0), 10000u);
  EXPECT_EQ(link.BacklogBytes(5 * kMs), 5000u);
  EXPECT_EQ(link.BacklogBytes(20 * kMs), 0u);
}

TEST(LinkModelTest, LongRunRateNeverExceedsTheLimit) {
  LinkParams params = Shaped(1e9, 40);
  params.queue_bytes = 1 << 30;  // no drops: measure the clock alone
  LinkDirection link(params, 1);
  int64_t last = 0;
  uint64_t bytes = 0;
  for (int i = 0; i < 100000; ++i) {
    auto admitted = link.Admit(i * 1000, 9000);  // offered at 72 Gbit/s
    ASSERT_TRUE(admitted.accepted);
    last = admitted.deliver_at_ns;
    bytes += 9000;
  }
  double seconds = (last - 20 * kMs) / 1e9;
  EXPECT_NEAR(bytes * 8 / seconds, 1e9, 1e9 * 1e-6);
}

TEST(LinkModelTest, OverfullQueueDropsAtTheTail) {
  LinkParams params = Shaped(8e6, 0);
  params.queue_bytes = 5000;
  LinkDirection link(params, 1);
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += link.Admit(0, 1000).accepted;
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(link.counters().dropped_queue, 5u);
  // Once the queue drained a bit, packets are accepted again.
  EXPECT_TRUE(link.Admit(2 * kMs, 1000).accepted);
}

TEST(LinkModelTest, DefaultQueueIsOneBdpWithAFloor) {
  EXPECT_EQ(Shaped(1e9, 40).QueueLimitBytes(), 5'000'000u);
  EXPECT_EQ(Shaped(1e6, 1).QueueLimitBytes(), LinkParams::kMinQueuePackets * 1500);
  LinkParams explicit_queue = Shaped(1e9, 40);
  explicit_queue.queue_bytes = 12345;
  EXPECT_EQ(explicit_queue.QueueLimitBytes(), 12345u);
}

TEST(LinkModelTest, UnlimitedRateOnlyDelays) {
  LinkDirection link(Shaped(0, 10), 1);
  for (int i = 0; i < 1000; ++i) {
    auto admitted = link.Admit(i, 65000);
    ASSERT_TRUE(admitted.accepted);
    EXPECT_EQ(admitted.deliver_at_ns, i + 5 * kMs);
  }
  EXPECT_EQ(link.BacklogBytes(0), 0u);
}

TEST(LinkModelTest, LossRateMatchesWithinStatisticalTolerance) {
  LinkParams params = Shaped(0, 0);
  params.loss = 0.01;
  LinkDirection link(params, 42);
  const int n = 200000;
  int lost = 0;
  for (int i = 0; i < n; ++i) lost += !link.Admit(i, 100).accepted;
  double sigma = std::sqrt(n * 0.01 * 0.99);
  EXPECT_NEAR(lost, n * 0.01, 4 * sigma);
  EXPECT_EQ(link.counters().dropped_loss, static_cast<uint64_t>(lost));
}

TEST(LinkModelTest, JitterStaysInBoundsAndNeverReorders) {
  LinkParams params = Shaped(0, 20);
  params.jitter_ms = 5;
  LinkDirection link(params, 7);
  int64_t previous = 0;
  bool varied = false;
  for (int i = 0; i < 10000; ++i) {
    int64_t now = i * 100'000;  // every 0.1 ms: jitter would reorder without the guard
    auto admitted = link.Admit(now, 100);
    ASSERT_TRUE(admitted.accepted);
    EXPECT_GE(admitted.deliver_at_ns, previous);
    EXPECT_GE(admitted.deliver_at_ns, now + 5 * kMs);
    EXPECT_LE(admitted.deliver_at_ns, now + 15 * kMs);
    varied |= admitted.deliver_at_ns != now + 10 * kMs;
    previous = admitted.deliver_at_ns;
  }
  EXPECT_TRUE(varied);
}

TEST(LinkModelTest, CutDropsEverythingAndHealResumes) {
  LinkParams params = Shaped(1e9, 40);
  LinkDirection link(params, 1);
  params.cut = true;
  link.SetParams(params);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(link.Admit(i, 1500).accepted);
  EXPECT_EQ(link.counters().dropped_cut, 100u);
  params.cut = false;
  link.SetParams(params);
  EXPECT_TRUE(link.Admit(1000, 1500).accepted);
}

TEST(LinkModelTest, LiveRttChangeAppliesToNewPacketsWithoutReordering) {
  LinkDirection link(Shaped(0, 80), 1);
  auto slow = link.Admit(0, 100);
  link.SetParams(Shaped(0, 20));
  auto fast = link.Admit(1 * kMs, 100);
  EXPECT_EQ(slow.deliver_at_ns, 40 * kMs);
  EXPECT_EQ(fast.deliver_at_ns, 40 * kMs);  // held behind the older packet
  auto later = link.Admit(100 * kMs, 100);
  EXPECT_EQ(later.deliver_at_ns, 110 * kMs);
}

TEST(LinkModelTest, CountersAddUp) {
  LinkParams params = Shaped(8e6, 0);
  params.queue_bytes = 3000;
  params.loss = 0.5;
  LinkDirection link(params, 3);
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) accepted += link.Admit(i * 10 * kMs / 100, 1000).accepted;
  const LinkCounters& c = link.counters();
  EXPECT_EQ(c.offered_packets, 1000u);
  EXPECT_EQ(c.offered_bytes, 1000000u);
  EXPECT_EQ(c.dropped_loss + c.dropped_queue + accepted, 1000u);
  EXPECT_GT(c.dropped_loss, 0u);
  EXPECT_GT(c.dropped_queue, 0u);
}

TEST(LinkModelTest, SuperPacketIsChargedAndCountedAsItsSegments) {
  LinkDirection link(Shaped(8e6, 40), 1);  // 1 byte per microsecond
  auto admitted = link.Admit(0, 30000, 4);
  ASSERT_TRUE(admitted.accepted);
  EXPECT_EQ(admitted.deliver_at_ns, 30 * kMs + 20 * kMs);
  EXPECT_EQ(link.counters().offered_packets, 4u);
  EXPECT_EQ(link.counters().offered_bytes, 30000u);
}

TEST(LinkModelTest, SuperPacketIsLostWhenAnyOfItsSegmentsWouldBe) {
  LinkParams params;
  params.loss = 0.1;
  LinkDirection link(params, 11);
  const int n = 20000;
  int lost = 0;
  for (int i = 0; i < n; ++i) lost += !link.Admit(i, 8000, 5).accepted;
  const double expected = n * (1 - std::pow(0.9, 5));  // about 41 %
  EXPECT_NEAR(lost, expected, 4 * std::sqrt(expected));
  EXPECT_EQ(link.counters().dropped_loss, 5u * lost);
}

// A policer queues nothing: within its burst packets pass at once (no
// serialization delay); past it, only what the rate refills gets through.
TEST(LinkModelTest, PolicerPassesTheBurstAtOnceThenOnlyTheRate) {
  LinkParams params = Shaped(8e6, 40);  // 1 byte per microsecond
  params.policer_burst_bytes = 10000;
  LinkDirection link(params, 1);
  for (int i = 0; i < 10; ++i) {
    auto admitted = link.Admit(0, 1000);
    ASSERT_TRUE(admitted.accepted) << i;
    EXPECT_EQ(admitted.deliver_at_ns, 20 * kMs);  // propagation only
  }
  EXPECT_FALSE(link.Admit(0, 1000).accepted);  // the bucket is empty
  EXPECT_FALSE(link.Admit(kMs / 2, 1000).accepted);  // half refilled
  EXPECT_TRUE(link.Admit(kMs, 1000).accepted);  // a packet's worth refilled
  EXPECT_EQ(link.counters().dropped_policed, 2u);
  EXPECT_EQ(link.BacklogBytes(0), 0u);
  // Over a long run the policer delivers the rate, not more.
  uint64_t delivered = 0;
  for (int64_t t = 2 * kMs; t < 1002 * kMs; t += kMs / 4) delivered += link.Admit(t, 1000).accepted ? 1000 : 0;
  EXPECT_NEAR(static_cast<double>(delivered), 1e6, 11000);  // 1 s at 1 MB/s, plus at most the burst
}

TEST(RandomTest, UniformIsInRangeAndSeedDependent) {
  Random a(1), b(1), c(2);
  for (int i = 0; i < 1000; ++i) {
    double x = a.Uniform();
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
    EXPECT_EQ(x, b.Uniform());
  }
  EXPECT_NE(Random(1).Next(), c.Next());
}

}  // namespace
}  // namespace silk::cluster::wanem
