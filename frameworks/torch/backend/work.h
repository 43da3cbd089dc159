// c10d's view of one Silk operation. The operation runs on the communicator's
// engine thread; this object keeps its tensors alive until it completes, and
// completes -- staged outputs written back, then the future, then the work --
// from Silk's Work::OnComplete, so callbacks chained on the future (DDP's comm
// hooks) have run by the time wait() returns. That runs on one of the
// communicator's callback threads ("silk-callbacks"), never on the engine
// thread: a future callback may issue another collective on the group and
// wait for it (PowerSGD does), and the engine runs it meanwhile.
//
// A failed operation's Silk status becomes a RuntimeError that wait(), the
// future's wait()/value() (and so DDP's backward) raise in Python:
// "silk allreduce failed: DEADLINE_EXCEEDED: allreduce(count=..., ...) #12 on
// rank 3 failed: ...".
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/ivalue.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "frameworks/torch/backend/tensor_buffer.h"
#include "frameworks/torch/backend/torch_version.h"
#include "runtime/engine/work.h"

namespace silk::pytorch {

// Counts a process group's operations that have not completed yet (their
// future callbacks included), so that shutdown can wait for them.
class InFlight {
 public:
  void Add();
  void Done();
  // True once none is in flight; false after `timeout`.
  bool WaitUntilIdle(absl::Duration timeout);

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

class SilkWork : public ::c10d::Work {
 public:
  // `title` is a literal like "silk:allreduce" (what the profiler shows);
  // `outputs` are the future's value and result(); `buffers` are written back
  // on success and released on completion; `in_flight` counts this work
  // until it has completed.
  SilkWork(int rank, ::c10d::OpType type, const char* title, std::vector<at::Tensor> outputs,
           std::vector<TensorBuffer> buffers, std::shared_ptr<InFlight> in_flight);

  // Completes `work` when `operation` does (at once if it already has).
  static void CompleteWith(const c10::intrusive_ptr<SilkWork>& work, const WorkPtr& operation);

  // Waits as Silk's Work::Wait does: never past the operation's deadline
  // (and a grace), where it raises naming the operation; then as c10d does
  // (the future's callbacks have run, a failure raises).
  bool wait(std::chrono::milliseconds timeout = ::kNoTimeout) override;
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override { return future_; }
  std::vector<at::Tensor> result() override { return outputs_; }

 private:
  void Complete(const absl::Status& status);

  const std::string name_;  // "allreduce", for messages
  const std::vector<at::Tensor> outputs_;
  std::vector<TensorBuffer> buffers_;  // touched only at construction and in Complete
  WorkPtr operation_;                  // set by CompleteWith, before anything waits
  const c10::intrusive_ptr<c10::ivalue::Future> future_;
  const std::shared_ptr<InFlight> in_flight_;
};

}  // namespace silk::pytorch
