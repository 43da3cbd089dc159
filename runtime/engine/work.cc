#include "runtime/engine/work.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/engine/callback_executor.h"

namespace silk {

absl::Status Work::Wait(absl::Duration timeout) const {
  const absl::Time until = timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  const bool result_suffices = CallbackExecutor::OnCallbackThread();
  absl::MutexLock lock(&mu_);
  while (true) {
    const bool started = started_ != absl::InfinitePast();
    // Once started, the operation has its deadline; until then the ones ahead
    // of it (each bounded by its own) hold it back.
    absl::Time give_up = absl::InfiniteFuture();
    // The transport is asked only while the operation runs: once its result
    // is known, a callback may already have destroyed the communicator (and
    // transport); until then the engine, running it, keeps them alive.
    const bool running = started && !done_ && !completing_;
    if (running) {
      const absl::Time deadline = started_ + timeout_;
      give_up = (transport_ ? transport_->StretchDeadline(started_, deadline) : deadline) + kCompletionGrace;
    }
    auto ready = [this, started, result_suffices]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return done_ || (result_suffices && completing_) || (started_ != absl::InfinitePast()) != started;
    };
    if (mu_.AwaitWithDeadline(absl::Condition(&ready), std::min(until, give_up))) {
      if (done_ || (result_suffices && completing_)) return status_;
      continue;  // it started: now its deadline applies
    }
    // A WAN link went down meanwhile: the operation waits longer, and so does this.
    const bool still_running = running && !completing_ && !done_;
    if (still_running && transport_ &&
        transport_->StretchDeadline(started_, started_ + timeout_) + kCompletionGrace > give_up) {
      continue;
    }
    if (give_up <= until && !completing_) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "%s #%d has not completed %s after its deadline (started %s ago with a timeout of %s): the "
          "communicator cannot run it",
          descriptor_.ToString(), op_id_, absl::FormatDuration(kCompletionGrace),
          absl::FormatDuration(absl::Now() - started_), absl::FormatDuration(timeout_)));
    }
    if (absl::Now() >= until) {
      return absl::DeadlineExceededError(absl::StrFormat("%s #%d still running after waiting %s",
                                                         descriptor_.ToString(), op_id_,
                                                         absl::FormatDuration(timeout)));
    }
    // Past the grace with the result known: its callbacks are still running;
    // they are the application's, so wait for them up to `timeout`.
    auto finished = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_; };
    if (mu_.AwaitWithDeadline(absl::Condition(&finished), until)) return status_;
  }
}

bool Work::Test() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

absl::Status Work::status() const {
  absl::MutexLock lock(&mu_);
  return done_ ? status_ : absl::UnavailableError(absl::StrFormat("%s #%d is pending", descriptor_.ToString(), op_id_));
}

absl::Duration Work::duration() const {
  absl::MutexLock lock(&mu_);
  return duration_;
}

void Work::OnComplete(std::function<void(const absl::Status&)> callback) {
  absl::Status result;
  {
    absl::MutexLock lock(&mu_);
    if (!done_) {  // also while completing: Complete() picks it up
      callbacks_.push_back(std::move(callback));
      return;
    }
    result = status_;
  }
  callback(result);
}

void Work::MarkStarted(absl::Time at) {
  if (at == absl::InfinitePast()) at = absl::Now();
  absl::MutexLock lock(&mu_);
  started_ = at;
}

void Work::Complete(absl::Status status, absl::Time at) {
  {
    absl::MutexLock lock(&mu_);
    if (done_ || completing_) return;
    completing_ = true;
    status_ = std::move(status);
    if (started_ != absl::InfinitePast()) duration_ = (at == absl::InfinitePast() ? absl::Now() : at) - started_;
    if (callbacks_.empty()) {
      done_ = true;
      return;
    }
  }
  if (callbacks_executor_ == nullptr) {
    RunCallbacks();
  } else {
    callbacks_executor_->Post([self = shared_from_this()] { self->RunCallbacks(); });
  }
}

void Work::RunCallbacks() {
  // Callbacks run before the work reads as done, so a Wait() that returns
  // happens after them (DDP relies on a future's callbacks having run).
  std::vector<std::function<void(const absl::Status&)>> callbacks;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    callbacks.swap(callbacks_);
    status = status_;
  }
  while (true) {
    for (auto& callback : callbacks) callback(status);
    callbacks.clear();
    absl::MutexLock lock(&mu_);
    callbacks.swap(callbacks_);  // added by a callback while we ran
    if (callbacks.empty()) {
      done_ = true;
      return;
    }
  }
}

}  // namespace silk
