#include "runtime/rate_estimator.h"

#include <algorithm>

namespace silk {

namespace {
// Samples a window keeps at least, and at most (overlapping operations each report).
constexpr size_t kMinSamples = 2, kMaxSamples = 256;
}  // namespace

double RateEstimator::LargestLocked() const {
  double largest = 0;
  for (const Sample& s : samples_) largest = std::max(largest, s.bytes_per_s);
  return largest;
}

void RateEstimator::AddSample(absl::Time now, double bytes, absl::Duration elapsed) {
  if (!(bytes > 0) || elapsed <= absl::ZeroDuration()) return;
  const double rate = bytes / absl::ToDoubleSeconds(elapsed);
  absl::MutexLock lock(&mu_);
  growing_ = rate > LargestLocked() * options_.growth;
  taken_++;
  samples_.push_back(Sample{now, rate});
  while (samples_.size() > kMaxSamples ||
         (samples_.size() > kMinSamples && samples_.front().at < now - options_.window)) {
    samples_.pop_front();
  }
}

double RateEstimator::Estimate() const {
  absl::MutexLock lock(&mu_);
  return LargestLocked();
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
  int above_declared = 0;
  {
    absl::MutexLock lock(&mu_);
    if (samples_.empty()) return std::max(declared, 0.0);
    estimate = LargestLocked();
    measured = estimate * (growing_ ? options_.startup_gain : options_.headroom);
    for (const Sample& s : samples_) above_declared += s.bytes_per_s > declared * options_.growth;
  }
  // Delivery rose past the declared rate (in a probe): the declaration is no limit.
  if (declared <= 0 || above_declared >= 2 || measured <= declared) return measured;
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
