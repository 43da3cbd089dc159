#include "training/buckets.h"

#include <gtest/gtest.h>

namespace silk::training {
namespace {

TEST(AssignBuckets, BackwardOrderContiguousAndSmallFirstBucket) {
  // Parameters in registration order; backward produces the last one first.
  const std::vector<size_t> counts = {100, 10, 300, 20, 50, 5};
  BucketLayout layout = AssignBuckets(counts, /*first_bucket_bytes=*/40 * 4, /*bucket_bytes=*/200 * 4);
  EXPECT_EQ(layout.total, 485u);
  // Bucket 0 closes at >= 40 elements: params 5 (5) and 4 (50).
  ASSERT_EQ(layout.buckets.size(), 3u);
  EXPECT_EQ(layout.buckets[0].params, (std::vector<int>{5, 4}));
  EXPECT_EQ(layout.buckets[1].params, (std::vector<int>{3, 2}));  // 20 + 300 >= 200; a parameter is never split
  EXPECT_EQ(layout.buckets[2].params, (std::vector<int>{1, 0}));  // the rest
  size_t expected_offset = 0;
  for (size_t b = 0; b < layout.buckets.size(); ++b) {
    EXPECT_EQ(layout.buckets[b].offset, expected_offset);
    size_t sum = 0;
    for (int p : layout.buckets[b].params) {
      EXPECT_EQ(layout.bucket_of_param[p], static_cast<int>(b));
      EXPECT_EQ(layout.param_offset[p], expected_offset + sum);  // contiguous, in backward order
      sum += counts[p];
    }
    EXPECT_EQ(layout.buckets[b].count, sum);
    expected_offset += sum;
  }
  EXPECT_EQ(expected_offset, layout.total);
}

TEST(AssignBuckets, OneBucketWhenLarge) {
  BucketLayout layout = AssignBuckets({1, 2, 3}, size_t{1} << 20, size_t{25} << 20);
  ASSERT_EQ(layout.buckets.size(), 1u);
  EXPECT_EQ(layout.buckets[0].params, (std::vector<int>{2, 1, 0}));
  EXPECT_EQ(layout.param_offset[2], 0u);
  EXPECT_EQ(layout.param_offset[0], 5u);
}

TEST(AssignBuckets, ZeroBudgetGivesOneBucketPerParameterAndEmptyParamsAreKept) {
  BucketLayout layout = AssignBuckets({4, 0, 6}, 0, 0);
  ASSERT_EQ(layout.buckets.size(), 3u);
  EXPECT_EQ(layout.buckets[1].params, (std::vector<int>{1}));
  EXPECT_EQ(layout.buckets[1].count, 0u);
  EXPECT_EQ(layout.total, 10u);
}

}  // namespace
}  // namespace silk::training
