#include "runtime/engine/work.h"

#include "absl/strings/str_format.h"

namespace silk {

absl::Status Work::Wait(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    return absl::DeadlineExceededError(absl::StrFormat("%s #%d still running after waiting %s",
                                                       descriptor_.ToString(), op_id_, absl::FormatDuration(timeout)));
  }
  return status_;
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

void Work::MarkStarted() {
  absl::MutexLock lock(&mu_);
  started_ = absl::Now();
}

void Work::Complete(absl::Status status) {
  // Callbacks run before the work reads as done, so a Wait() that returns
  // happens after them (DDP relies on a future's callbacks having run).
  std::vector<std::function<void(const absl::Status&)>> callbacks;
  {
    absl::MutexLock lock(&mu_);
    if (done_ || completing_) return;
    completing_ = true;
    status_ = status;
    if (started_ != absl::InfinitePast()) duration_ = absl::Now() - started_;
    callbacks.swap(callbacks_);
  }
  while (!callbacks.empty()) {
    for (auto& callback : callbacks) callback(status);
    callbacks.clear();
    absl::MutexLock lock(&mu_);
    callbacks.swap(callbacks_);  // added by a callback while we ran
    if (callbacks.empty()) done_ = true;
  }
  absl::MutexLock lock(&mu_);
  done_ = true;
}
}  // namespace silk
