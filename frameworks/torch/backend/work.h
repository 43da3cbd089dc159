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
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/ivalue.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "frameworks/torch/backend/tensor_buffer.h"
#include "frameworks/torch/backend/torch_version.h"
#include "runtime/engine/work.h"

namespace silk::pytorch {

// Counts a process group's operations that have not completed yet (their
// future callbacks included), so that shutdown can wait for them.
class InFlight : public std::enable_shared_from_this<InFlight> {
 public:
  // A work from issue to completion; `claimed`: it holds a Claim.
  void Add(bool claimed);
  void Done(bool claimed);
  // True once none is in flight; false after `timeout`.
  bool WaitUntilIdle(absl::Duration timeout);

  // The memory of one operation (its tensors' storages and host buffer),
  // held from before the Silk call until its work completes (or the call
  // throws). `independent()`: when it was claimed, every operation in flight
  // held a claim and none of their memory overlapped it, so the engine may
  // start it before they end (Silk's may_overlap). DDP's gradient buckets
  // are such operations: over a WAN their latencies then overlap instead of
  // adding up. (Issue order across threads that share a group is undefined
  // in c10d anyway, so a claim races only with calls that were unordered.)
  class Claim {
   public:
    Claim() = default;
    Claim(Claim&& other) noexcept { *this = std::move(other); }
    Claim& operator=(Claim&& other) noexcept;
    ~Claim() { Release(); }
    bool independent() const { return independent_; }
    bool held() const { return owner_ != nullptr; }
    void Release();

   private:
    friend class InFlight;
    std::shared_ptr<InFlight> owner_;
    uint64_t id_ = 0;
    bool independent_ = false;
  };
  Claim ClaimMemory(const std::vector<TensorBuffer>& buffers);

 private:
  struct Range {
    uintptr_t begin, end;
  };
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_claim_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::vector<Range>> claims_ ABSL_GUARDED_BY(mu_);
  int unclaimed_works_ ABSL_GUARDED_BY(mu_) = 0;  // works in flight that hold no claim
};

class SilkWork : public ::c10d::Work {
 public:
  // `title` is a literal like "silk:allreduce" (what the profiler shows);
  // `outputs` are the future's value and result(); `buffers` are written back
  // on success and released on completion; `in_flight` counts this work
  // until it has completed.
  // `claim`, if any, is released on completion (after the write-back).
  SilkWork(int rank, ::c10d::OpType type, const char* title, std::vector<at::Tensor> outputs,
           std::vector<TensorBuffer> buffers, std::shared_ptr<InFlight> in_flight, InFlight::Claim claim = {});

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
  InFlight::Claim claim_;  // released in Complete
  const bool claimed_;     // whether the work came with a claim
};

}  // namespace silk::pytorch
