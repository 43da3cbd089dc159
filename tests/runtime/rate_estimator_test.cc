// The WAN rate estimator on a simulated clock: the windowed maximum, the
// pace above it, and a closed loop against a simulated link whose rate
// changes, the way the region-aware all-reduce drives it.
#include "runtime/rate_estimator.h"

#include <algorithm>
#include <cstdio>

#include "gtest/gtest.h"

namespace silk {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);
constexpr double kMB = 1e6;

absl::Time At(double seconds) { return kStart + absl::Seconds(seconds); }

TEST(RateEstimator, NothingKnownBeforeTheFirstSample) {
  RateEstimator rate;
  EXPECT_EQ(rate.Estimate(), 0);
  EXPECT_EQ(rate.Pace(), 0);
  rate.AddSample(kStart, 0, absl::Seconds(1));
  rate.AddSample(kStart, 100, absl::ZeroDuration());
  rate.AddSample(kStart, 100, absl::Seconds(-1));
  EXPECT_EQ(rate.Estimate(), 0);
}

TEST(RateEstimator, TheEstimateIsTheLargestSampleOfTheWindow) {
  RateEstimator::Options options;
  options.window = absl::Seconds(2);
  RateEstimator rate(options);
  rate.AddSample(At(0), 100 * kMB, absl::Seconds(1));  // 100 MB/s
  rate.AddSample(At(0.5), 30 * kMB, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(rate.Estimate(), 100 * kMB) << "one slow operation does not pull it down";
  rate.AddSample(At(1.9), 40 * kMB, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(rate.Estimate(), 100 * kMB);
  rate.AddSample(At(2.1), 20 * kMB, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(rate.Estimate(), 40 * kMB) << "the 100 aged out; 40 is the largest of (0.1 s, 2.1 s]";
  rate.AddSample(At(4.0), 20 * kMB, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(rate.Estimate(), 20 * kMB);
  rate.AddSample(At(4.5), 80 * kMB, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(rate.Estimate(), 80 * kMB) << "a larger sample counts at once";
}

TEST(RateEstimator, TheEstimateStandsWhenNoOperationReports) {
  RateEstimator rate;
  rate.AddSample(At(0), 50 * kMB, absl::Seconds(1));
  // An hour without large operations: nothing newer to replace it with.
  EXPECT_DOUBLE_EQ(rate.Estimate(), 50 * kMB);
  EXPECT_GT(rate.Pace(), 0);
}

TEST(RateEstimator, PacesWithHeadroomAndFasterWhileSamplesGrow) {
  RateEstimator::Options options;
  options.headroom = 1.5;
  options.startup_gain = 2.5;
  options.growth = 1.1;
  RateEstimator rate(options);
  rate.AddSample(At(0), 80 * kMB, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(rate.Pace(), 200 * kMB) << "the first sample: start-up";
  rate.AddSample(At(0.2), 100 * kMB, absl::Seconds(1));  // found 25 % more: still growing
  EXPECT_DOUBLE_EQ(rate.Pace(), 250 * kMB);
  rate.AddSample(At(0.4), 105 * kMB, absl::Seconds(1));  // under 10 % more: the link is full
  EXPECT_DOUBLE_EQ(rate.Pace(), 157.5 * kMB);
  rate.AddSample(At(0.6), 60 * kMB, absl::Seconds(1));  // a slow operation
  EXPECT_DOUBLE_EQ(rate.Pace(), 157.5 * kMB);
}

// Operations of 64 MB back to back over a link whose rate changes at
// `change_s`; each takes 64 MB / min(pace, link) plus a fixed overhead
// (reduction, latency), and an unpaced one loses a fifth to its burst.
// Returns how long after the change the first operation starts from which
// every pace stays at or above the new rate (it never holds the link back)
// and within 1.6 times it (it caps the bursts), or -1 if none does.
double SecondsToFollow(double before, double after, double change_s) {
  RateEstimator rate;
  constexpr double kBytes = 64 * kMB;
  constexpr double kOverhead = 0.02;
  double now = 0, settled = -1;
  while (now < change_s + 20) {
    const double link = now < change_s ? before : after;
    const double pace = rate.Pace();
    const bool near = pace >= after && pace <= 1.6 * after;
    if (now >= change_s && near && settled < 0) settled = now - change_s;
    if (now >= change_s && !near) settled = -1;
    const double delivered = pace > 0 ? std::min(pace, link) : 0.8 * link;
    const double wan_s = kBytes / delivered;
    now += wan_s + kOverhead;
    rate.AddSample(At(now), kBytes, absl::Seconds(wan_s));
  }
  return settled;
}

TEST(RateEstimator, FollowsALinkThatGetsSlowerOrFasterWithinSeconds) {
  const double slower = SecondsToFollow(125 * kMB, 37.5 * kMB, 10);
  EXPECT_GE(slower, 0) << "never settled near 37.5 MB/s";
  EXPECT_LT(slower, 5) << "1 Gbit/s -> 300 Mbit/s";
  std::printf("slower: followed %.2f s after the change\n", slower);
  const double faster = SecondsToFollow(37.5 * kMB, 125 * kMB, 10);
  EXPECT_GE(faster, 0) << "never settled near 125 MB/s";
  EXPECT_LT(faster, 5) << "300 Mbit/s -> 1 Gbit/s";
  std::printf("faster: followed %.2f s after the change\n", faster);
}

TEST(RateEstimator, UnpacedStartReachesTheLinkAndStaysThere) {
  RateEstimator rate;
  const double link = 125 * kMB;
  double now = 0;
  for (int op = 0; op < 40; ++op) {
    const double pace = rate.Pace();
    if (op >= 3) {
      EXPECT_GE(pace, link) << "op " << op;
      EXPECT_LE(pace, 1.5 * link * 1.0001) << "op " << op;
    }
    // Unpaced, the first loses 30 % to its burst; after that the link is full at most.
    const double delivered = pace > 0 ? std::min(pace, link) : 0.7 * link;
    now += 64 * kMB / delivered;
    rate.AddSample(At(now), 64 * kMB, absl::Seconds(64 * kMB / delivered));
  }
}

}  // namespace
}  // namespace silk
