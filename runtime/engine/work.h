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
#include "runtime/transport/transport.h"

namespace silk {

class CallbackExecutor;

class Work : public std::enable_shared_from_this<Work> {
 public:
  // `timeout`: the operation's own, counted from its start. `callbacks` runs
  // the OnComplete callbacks (null: they run on the completing thread); it
  // must outlive every call to Complete.
  // `transport`, when given, stretches the deadline while a WAN link is down
  // (Transport::StretchDeadline), as it does the operation's own waits.
  Work(uint64_t op_id, OpDescriptor descriptor, absl::Duration timeout = absl::InfiniteDuration(),
       CallbackExecutor* callbacks = nullptr, const transport::Transport* transport = nullptr)
      : op_id_(op_id),
        descriptor_(descriptor),
        timeout_(timeout),
        callbacks_executor_(callbacks),
        transport_(transport) {}

  // Waits until the operation has completed and its OnComplete callbacks have
  // run, at most `timeout`; returns the operation's result. On a callback
  // thread it returns once the result is known, without waiting for
  // callbacks (which may include the caller itself).
  //
  // The result is waited for no longer than the operation's deadline (its
  // timeout from when it started) and a grace for the engine to fail it:
  // past that, whatever `timeout`, returns DeadlineExceeded naming the
  // operation. (Callbacks still running then are the application's code and
  // are waited for up to `timeout`.) Any other DeadlineExceeded from
  // `timeout` leaves the operation running (its own deadline still bounds it).
  absl::Status Wait(absl::Duration timeout = absl::InfiniteDuration()) const;
  // True once the operation has completed (successfully or not).
  bool Test() const;
  // The result once complete; Unavailable while pending.
  absl::Status status() const;

  uint64_t op_id() const { return op_id_; }
  const OpDescriptor& descriptor() const { return descriptor_; }
  // Time the operation spent executing (zero until complete).
  absl::Duration duration() const;

  // Runs `callback` once with the result: now, on the calling thread, if the
  // operation has completed; else on one of the communicator's callback
  // threads ("silk-callbacks", see callback_executor.h), never on the engine
  // thread. So a callback may issue another collective on this communicator
  // and wait for it: the engine is free to run it. Callbacks of one operation
  // run in the order they were added, before Wait() returns elsewhere.
  void OnComplete(std::function<void(const absl::Status&)> callback);

  // Engine side. `at`: when it happened, if the caller read the clock anyway.
  void MarkStarted(absl::Time at = absl::InfinitePast());
  // Records the result and hands the callbacks to the executor.
  void Complete(absl::Status status, absl::Time at = absl::InfinitePast());

  // How long past its deadline a started operation may take to complete
  // (the engine's wait for stray requests after a failure included) before
  // Wait() gives up on it.
  static constexpr absl::Duration kCompletionGrace = absl::Seconds(30);

 private:
  void RunCallbacks();

  const uint64_t op_id_;
  const OpDescriptor descriptor_;
  const absl::Duration timeout_;
  CallbackExecutor* const callbacks_executor_;
  const transport::Transport* const transport_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;        // result known, callbacks run
  bool completing_ ABSL_GUARDED_BY(mu_) = false;  // result known
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  absl::Time started_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration duration_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(const absl::Status&)>> callbacks_ ABSL_GUARDED_BY(mu_);
};

using WorkPtr = std::shared_ptr<Work>;

}  // namespace silk
