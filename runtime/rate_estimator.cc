#include "runtime/rate_estimator.h"

namespace silk {

void RateEstimator::AddSample(absl::Time now, double bytes, absl::Duration elapsed) {
  if (!(bytes > 0) || elapsed <= absl::ZeroDuration()) return;
  const double rate = bytes / absl::ToDoubleSeconds(elapsed);
  absl::MutexLock lock(&mu_);
  const double before = samples_.empty() ? 0 : samples_.front().bytes_per_s;
  growing_ = rate > before * options_.growth;
  // A newer sample at least as large makes the older, smaller ones irrelevant to any later window.
  while (!samples_.empty() && samples_.back().bytes_per_s <= rate) samples_.pop_back();
  samples_.push_back(Sample{now, rate});
  while (samples_.front().at < now - options_.window) samples_.pop_front();
}

double RateEstimator::Estimate() const {
  absl::MutexLock lock(&mu_);
  return samples_.empty() ? 0 : samples_.front().bytes_per_s;
}

double RateEstimator::Pace() const {
  absl::MutexLock lock(&mu_);
  if (samples_.empty()) return 0;
  return samples_.front().bytes_per_s * (growing_ ? options_.startup_gain : options_.headroom);
}

}  // namespace silk
