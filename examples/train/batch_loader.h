// Makes the training loop's batches one step ahead on a thread of its own
// ("data"), as a framework's data loader prefetches: the next batch is drawn
// while this step computes and waits for its exchange, so drawing it never
// lengthens the step when the exchange leaves a core idle.
#pragma once

#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "examples/train/mlp.h"

namespace silk::examples {

struct Batch {
  std::vector<float> x;    // batch rows of features
  std::vector<int> labels;  // batch labels
};

class BatchLoader {
 public:
  // Step s's batch holds samples (s * ranks + rank) * batch + j, j < batch: every
  // rank's share of the global batch, for steps 0 .. steps - 1.
  BatchLoader(const SyntheticData& data, int rank, int ranks, int batch, int steps);
  ~BatchLoader();  // stops the thread (it may be drawing a batch nobody will take)
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next step's batch (steps in order from 0), waiting at most `timeout`
  // for it. Valid until the following call, which hands its buffer back.
  absl::StatusOr<const Batch*> Next(absl::Duration timeout);

 private:
  void Loop();

  const SyntheticData& data_;
  const int rank_, ranks_, batch_, steps_;
  Batch slots_[2];  // step s in slot s % 2
  absl::Mutex mu_;
  int made_ ABSL_GUARDED_BY(mu_) = 0;       // batches drawn
  int handed_out_ ABSL_GUARDED_BY(mu_) = 0;  // batches returned by Next()
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace silk::examples
