// A handle on one asynchronous collective, like c10d::Work or an MPI request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/core/types.h"

namespace silk {

class Work {
 public:
  Work(uint64_t op_id, OpDescriptor descriptor) : op_id_(op_id), descriptor_(descriptor) {}

  // Waits until the operation completes, at most `timeout`. A timeout here
  // leaves the operation running (its own deadline still bounds it) and
  // returns DeadlineExceeded; otherwise returns the operation's result.
  absl::Status Wait(absl::Duration timeout = absl::InfiniteDuration()) const;
  // True once the operation has completed (successfully or not).
  bool Test() const;
  // The result once complete; Unavailable while pending.
  absl::Status status() const;

  uint64_t op_id() const { return op_id_; }
  const OpDescriptor& descriptor() const { return descriptor_; }
  // Time the operation spent executing (zero until complete).
  absl::Duration duration() const;

  // Runs `callback` once with the result: now if complete, else on completion
  // (on the engine thread; keep it short).
  void OnComplete(std::function<void(const absl::Status&)> callback);

  // Engine side.
  void MarkStarted();
  void Complete(absl::Status status);

 private:
  const uint64_t op_id_;
  const OpDescriptor descriptor_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool completing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  absl::Time started_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration duration_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(const absl::Status&)>> callbacks_ ABSL_GUARDED_BY(mu_);
};

using WorkPtr = std::shared_ptr<Work>;

}  // namespace silk
