#include "runtime/wan_settings.h"

#include <algorithm>
#include <cmath>

namespace silk {
namespace {

constexpr double kBytesPerLane = 2 << 20;  // one lane per 2 MB of bandwidth-delay product
constexpr int kMinLanes = 2, kMaxLanes = 8;

double BdpBytes(const WanLink& link) { return std::max(link.rate_bps, 0.0) / 8.0 * std::max(link.rtt_s, 0.0); }

size_t BufferFor(const WanLink& link, int lanes) {
  return static_cast<size_t>(std::clamp(2.0 * BdpBytes(link) / std::max(lanes, 1),
                                        static_cast<double>(kMinWanSocketBuffer),
                                        static_cast<double>(kMaxWanSocketBuffer)));
}

}  // namespace

WanSettings WanSettingsFor(const Config& config, const WanLink& link) {
  WanSettings wan;
  wan.lanes = config.wan_lanes > 0
                  ? config.wan_lanes
                  : std::clamp(static_cast<int>(std::ceil(BdpBytes(link) / kBytesPerLane)), kMinLanes, kMaxLanes);
  wan.socket.buffer_bytes = config.socket_buffer_bytes > 0 ? config.socket_buffer_bytes : BufferFor(link, wan.lanes);
  wan.socket.congestion = config.wan_congestion;
  wan.socket.notsent_lowat_bytes = config.wan_notsent_lowat_bytes;
  return wan;
}

WanSettings OpeningWanSettings(const Config& config, const cluster::Link* declared) {
  if (declared != nullptr) {
    return WanSettingsFor(config, WanLink{static_cast<double>(declared->bandwidth_bps()), declared->rtt_ms() / 1e3});
  }
  WanSettings wan = WanSettingsFor(config, WanLink{config.link_rate_bps, absl::ToDoubleSeconds(config.link_rtt)});
  if (config.socket_buffer_bytes == 0) wan.socket.buffer_bytes = kMaxWanSocketBuffer;
  return wan;
}

WanLink MeasuredWanLink(const Config& config, const TierCost& wan) {
  const double probed_bps = wan.probed_bytes_per_s * 8;
  const double rate_bps =
      wan.rate_settled ? probed_bps * kMeasuredRateHeadroom : std::max(probed_bps, config.link_rate_bps);
  return WanLink{rate_bps, wan.rtt_s};
}

std::optional<size_t> MeasuredWanBuffer(const Config& config, int lanes, const cluster::Link* declared,
                                        const TierCost& wan) {
  if (declared != nullptr || config.socket_buffer_bytes > 0 || !wan.present || wan.rtt_s <= 0) return std::nullopt;
  return BufferFor(MeasuredWanLink(config, wan), lanes);
}

}  // namespace silk
