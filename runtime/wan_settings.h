// How the connections between regions are sized: enough lanes, with socket
// buffers large enough, that their windows cover the link's bandwidth-delay
// product twice over. A link the cluster spec declares sizes them when they
// open. Without one the round trip is not known yet then: they open with the
// lanes of the configured hints (SILK_LINK_RATE, SILK_LINK_RTT) and the largest
// buffers a lane takes, so that neither the start-up probe's bursts nor the
// first operations are held to a small window, and the buffers are sized again
// once the probe has measured the link (runtime/tiers.h; with SILK_PROBE_TIERS=0
// they keep the largest). The lanes cannot follow: both ends must agree on
// them before they connect. SILK_WAN_LANES and SILK_SOCKET_BUFFER win over both.
#pragma once

#include <cstddef>
#include <optional>

#include "runtime/core/cluster_spec.h"
#include "runtime/core/config.h"
#include "runtime/tiers.h"
#include "runtime/transport/socket.h"

namespace silk {

// What the sizing assumes of a link.
struct WanLink {
  double rate_bps = 0;
  double rtt_s = 0;
};

struct WanSettings {
  int lanes = 0;
  transport::SocketOptions socket;
};

// The bounds of a lane's buffer (the kernel caps it further at
// net.core.{r,w}mem_max).
inline constexpr size_t kMinWanSocketBuffer = size_t{1} << 20;
inline constexpr size_t kMaxWanSocketBuffer = size_t{16} << 20;
// A probed rate that settled is sized for with this much to spare: on a busy
// machine the probe's one pair may measure the CPU rather than the link.
inline constexpr double kMeasuredRateHeadroom = 1.5;

// Lanes and per-lane buffer for `link`.
WanSettings WanSettingsFor(const Config& config, const WanLink& link);

// For the connections as they open: the declared link (may be null: none).
WanSettings OpeningWanSettings(const Config& config, const cluster::Link* declared);

// The link a measured WAN tier stands for: its round trip, and its rate with
// headroom where the probe's bursts settled; else (a lower bound) the larger
// of that bound and the configured hint, SILK_LINK_RATE.
WanLink MeasuredWanLink(const Config& config, const TierCost& wan);

// Once the WAN is measured: the buffer each lane of `lanes` should have, or
// nullopt where nothing is to change (the spec declared the link, or
// SILK_SOCKET_BUFFER is set, or nothing was measured).
std::optional<size_t> MeasuredWanBuffer(const Config& config, int lanes, const cluster::Link* declared,
                                        const TierCost& wan);

}  // namespace silk
