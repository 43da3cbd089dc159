#include "examples/train/batch_loader.h"

#include <pthread.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace silk::examples {

BatchLoader::BatchLoader(const SyntheticData& data, int rank, int ranks, int batch, int steps)
    : data_(data), rank_(rank), ranks_(ranks), batch_(batch), steps_(steps) {
  for (Batch& slot : slots_) {
    slot.x.resize(size_t(batch) * data.features());
    slot.labels.resize(batch);
  }
  thread_ = std::thread([this] { Loop(); });
}

BatchLoader::~BatchLoader() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();  // bounded: the thread finishes at most one batch before it sees stop_
}

void BatchLoader::Loop() {
  pthread_setname_np(pthread_self(), "data");
  while (true) {
    int step;
    {
      absl::MutexLock lock(&mu_);
      // Step m goes into the slot of step m - 2, which the loop holds until
      // Next() hands out step m - 1 (handed_out_ >= m); steps 0 and 1 find theirs free.
      auto can_draw = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || (made_ < steps_ && made_ <= std::max(handed_out_, 1));
      };
      mu_.Await(absl::Condition(&can_draw));
      if (stop_) return;
      step = made_;
    }
    Batch& slot = slots_[step % 2];
    const uint64_t first = (uint64_t(step) * ranks_ + rank_) * batch_;
    for (int j = 0; j < batch_; ++j) {
      slot.labels[j] = data_.Sample(first + j, slot.x.data() + size_t(j) * data_.features());
    }
    absl::MutexLock lock(&mu_);
    made_ = step + 1;
  }
}

absl::StatusOr<const Batch*> BatchLoader::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (handed_out_ >= steps_) {
    return absl::OutOfRangeError(absl::StrFormat("BatchLoader: all %d steps' batches were handed out", steps_));
  }
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return made_ > handed_out_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError(
        absl::StrFormat("BatchLoader: step %d's batch not drawn within %s", handed_out_, absl::FormatDuration(timeout)));
  }
  return &slots_[handed_out_++ % 2];
}

}  // namespace silk::examples
