#include "cluster/wanem/link_model.h"

#include <algorithm>
#include <cmath>

namespace silk::cluster::wanem {

uint64_t LinkParams::QueueLimitBytes() const {
  if (queue_bytes > 0) return queue_bytes;
  double bdp_bytes = rate_bps / 8 * rtt_ms / 1e3;
  return std::max(static_cast<uint64_t>(bdp_bytes), kMinQueuePackets * mtu);
}

uint64_t Random::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Random::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

uint64_t LinkDirection::BacklogBytes(int64_t now_ns) const {
  if (params_.rate_bps <= 0 || busy_until_ns_ <= now_ns) return 0;
  return static_cast<uint64_t>(static_cast<double>(busy_until_ns_ - now_ns) * params_.rate_bps / 8e9);
}

LinkDirection::Admission LinkDirection::Admit(int64_t now_ns, uint32_t bytes, uint32_t segments) {
  counters_.offered_packets += segments;
  counters_.offered_bytes += bytes;
  if (params_.cut) {
    counters_.dropped_cut += segments;
    return {};
  }
  int64_t sent_ns = now_ns;
  if (params_.rate_bps > 0 && params_.policer_burst_bytes > 0) {
    if (!Police(now_ns, bytes)) {
      counters_.dropped_policed += segments;
      return {};
    }
  } else if (params_.rate_bps > 0) {
    if (BacklogBytes(now_ns) + bytes > params_.QueueLimitBytes()) {
      counters_.dropped_queue += segments;
      return {};
    }
    int64_t start_ns = std::max(now_ns, busy_until_ns_);
    busy_until_ns_ = start_ns + std::llround(bytes * 8e9 / params_.rate_bps);
    sent_ns = busy_until_ns_;
  }
  // Lost on the wire after the bottleneck: the packet still used its share of the rate.
  const double loss = segments == 1 ? params_.loss : 1 - std::pow(1 - params_.loss, segments);
  if (params_.loss > 0 && random_.Uniform() < loss) {
    counters_.dropped_loss += segments;
    return {};
  }
  double delay_ms = params_.rtt_ms / 2;
  if (params_.jitter_ms > 0) delay_ms += (2 * random_.Uniform() - 1) * params_.jitter_ms;
  int64_t deliver_ns = sent_ns + std::llround(std::max(0.0, delay_ms) * 1e6);
  deliver_ns = std::max(deliver_ns, last_deliver_ns_);
  last_deliver_ns_ = deliver_ns;
  return {true, deliver_ns};
}

bool LinkDirection::Police(int64_t now_ns, uint32_t bytes) {
  const double burst = static_cast<double>(params_.policer_burst_bytes);
  if (tokens_ < 0) {
    tokens_ = burst;
  } else if (now_ns > tokens_at_ns_) {
    tokens_ = std::min(burst, tokens_ + static_cast<double>(now_ns - tokens_at_ns_) * params_.rate_bps / 8e9);
  }
  tokens_at_ns_ = std::max(tokens_at_ns_, now_ns);
  if (tokens_ < bytes) return false;
  tokens_ -= bytes;
  return true;
}

void LinkDirection::Flush(int64_t now_ns) {
  busy_until_ns_ = now_ns;
  last_deliver_ns_ = now_ns;
}

}  // namespace silk::cluster::wanem
