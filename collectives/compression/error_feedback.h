// Error feedback for compressed all-reduces (AllreduceOptions::error_feedback):
// what quantisation dropped from one exchange of a buffer is added to the
// next exchange of the same buffer, so nothing is lost for good. Over T calls
// the sum of the results differs from the exact sum by the error still
// carried, at most one call's quantisation error (it telescopes).
//
// The caller keeps one per buffer (a training loop: one per gradient bucket)
// and passes it to every all-reduce of that buffer. Each rank holds only its
// own share: the error of the partial sums it quantises for the WAN, about
// count / (ranks in its region) floats. The first call binds it to (count,
// compression, rank, world size); a later call with another binding fails
// with InvalidArgument before anything is sent, until Reset(). Not
// thread-safe: an all-reduce that uses it may be in flight only with later
// all-reduces of the same buffer (the engine runs them in issue order), and
// Reset() only when none is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "collectives/compression/quantizer.h"

namespace silk {

class ErrorFeedback {
 public:
  // Forgets the carried error and the binding.
  void Reset();
  // The error carried into the next call (this rank's share; empty before the first).
  absl::Span<const float> residual() const { return residual_; }
  size_t bytes() const { return residual_.size() * sizeof(float); }

  // For the collective layer. On the calling thread: checks (or makes) the binding.
  absl::Status Bind(uint64_t count, Compression compression, int rank, int size);
  // On the engine: this rank's share of `elements`, zeros when first sized (or
  // when the plan's layout, and so the share, changed).
  float* Share(size_t elements);

 private:
  bool bound_ = false;
  uint64_t count_ = 0;
  Compression compression_ = Compression::kNone;
  int rank_ = -1, size_ = 0;
  std::vector<float> residual_;
};

}  // namespace silk
