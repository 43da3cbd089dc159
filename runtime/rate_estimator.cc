#include "runtime/rate_estimator.h"

#include <algorithm>

namespace silk {

void RateEstimator::AddSample(absl::Time now, double bytes, absl::Duration elapsed) {
  if (!(bytes > 0) || elapsed <= absl::ZeroDuration()) return;
  const double rate = bytes / absl::ToDoubleSeconds(elapsed);
  absl::MutexLock lock(&mu_);
  const double before = samples_.empty() ? 0 : samples_.front().bytes_per_s;
  growing_ = rate > before * options_.growth;
  taken_++;
  // A newer sample at least as large makes the older, smaller ones irrelevant to any later window.
  while (!samples_.empty() && samples_.back().bytes_per_s <= rate) samples_.pop_back();
  samples_.push_back(Sample{now, rate});
  while (samples_.front().at < now - options_.window) samples_.pop_front();
}

double RateEstimator::Estimate() const {
  absl::MutexLock lock(&mu_);
  return samples_.empty() ? 0 : samples_.front().bytes_per_s;
}

int64_t RateEstimator::samples() const {
  absl::MutexLock lock(&mu_);
  return taken_;
}

bool RateEstimator::Probing(absl::Time now) const {
  const int64_t every = absl::ToInt64Nanoseconds(options_.probe_every);
  if (every <= 0) return false;
  int64_t phase = absl::ToInt64Nanoseconds(now - absl::UnixEpoch()) % every;
  if (phase < 0) phase += every;
  return phase < absl::ToInt64Nanoseconds(options_.probe_for);
}

double RateEstimator::Pace(absl::Time now, double declared) const {
  double estimate, measured;
  {
    absl::MutexLock lock(&mu_);
    if (samples_.empty()) return std::max(declared, 0.0);
    estimate = samples_.front().bytes_per_s;
    measured = estimate * (growing_ ? options_.startup_gain : options_.headroom);
  }
  // Delivery rose past the declared rate (in a probe): the declaration is no limit.
  if (declared <= 0 || estimate > declared * options_.growth || measured <= declared) return measured;
  if (!Probing(now)) return declared;
  return std::min(measured, options_.probe_gain * std::max(declared, estimate));
}

bool DeliveryMeter::Delivered(absl::Time sent, absl::Time delivered, double bytes) {
  if (!open_) {
    open_ = true;
    sent_from_ = sent;
    delivered_from_ = delivered;
    return false;
  }
  bytes_ += bytes;
  const absl::Duration acked = delivered - delivered_from_;
  if (acked < rate_.options().sample_interval) return false;
  rate_.AddSample(delivered, bytes_, std::max(acked, sent - sent_from_));
  sent_from_ = sent;
  delivered_from_ = delivered;
  bytes_ = 0;
  return true;
}

}  // namespace silk
