#include "examples/train/batch_loader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "absl/time/clock.h"

namespace silk::examples {
namespace {

// What step s's batch must hold: the samples the loop drew itself before the loader.
void ExpectBatchIsStep(const SyntheticData& data, const Batch& batch, int rank, int ranks, int size, int step) {
  std::vector<float> x(data.features());
  for (int j = 0; j < size; ++j) {
    const int label = data.Sample((uint64_t(step) * ranks + rank) * size + j, x.data());
    ASSERT_EQ(batch.labels[j], label) << "step " << step << " sample " << j;
    ASSERT_EQ(std::memcmp(batch.x.data() + size_t(j) * data.features(), x.data(), x.size() * sizeof(float)), 0)
        << "step " << step << " sample " << j;
  }
}

TEST(BatchLoader, HandsOutEveryStepsBatchInOrderWhetherTheLoopIsFastOrSlow) {
  const SyntheticData data(32, 4, /*seed=*/3, /*noise=*/1.0f);
  for (absl::Duration pause : {absl::ZeroDuration(), absl::Milliseconds(3)}) {
    BatchLoader loader(data, /*rank=*/2, /*ranks=*/3, /*batch=*/16, /*steps=*/12);
    for (int step = 0; step < 12; ++step) {
      absl::StatusOr<const Batch*> batch = loader.Next(absl::Seconds(30));
      ASSERT_TRUE(batch.ok()) << batch.status();
      ExpectBatchIsStep(data, **batch, 2, 3, 16, step);
      absl::SleepFor(pause);  // the loader runs ahead meanwhile, into the other buffer only
      ExpectBatchIsStep(data, **batch, 2, 3, 16, step);
    }
    absl::StatusOr<const Batch*> beyond = loader.Next(absl::Seconds(1));
    EXPECT_EQ(beyond.status().code(), absl::StatusCode::kOutOfRange) << beyond.status();
  }
}

TEST(BatchLoader, AWaitThatRunsOutSaysWhichStep) {
  const SyntheticData data(256, 4, 1, 1.0f);
  BatchLoader loader(data, 0, 1, /*batch=*/8192, /*steps=*/2);  // tens of milliseconds per batch
  absl::StatusOr<const Batch*> batch = loader.Next(absl::ZeroDuration());
  ASSERT_EQ(batch.status().code(), absl::StatusCode::kDeadlineExceeded) << batch.status();
  EXPECT_NE(batch.status().message().find("step 0"), absl::string_view::npos) << batch.status();
  EXPECT_TRUE(loader.Next(absl::Seconds(30)).ok());  // still drawn, and still step 0's
}

TEST(BatchLoader, StopsPromptlyWhenTheLoopEndsEarly) {
  const SyntheticData data(32, 4, 1, 1.0f);
  const absl::Time start = absl::Now();
  {
    BatchLoader loader(data, 0, 1, 16, /*steps=*/1000000);
    ASSERT_TRUE(loader.Next(absl::Seconds(30)).ok());
  }  // the loader is blocked with one batch ahead: the destructor must not wait for the rest
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

}  // namespace
}  // namespace silk::examples
