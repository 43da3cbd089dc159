// silk-netprobe's measurements. A server (`serve`) answers three kinds of TCP
// connections, chosen by the connection's first byte, plus UDP datagrams:
//   'P' ping-pong: echoes 8-byte messages (round-trip time)
//   'S' sink: discards a stream, then replies with bytes received per bucket
//       of CLOCK_MONOTONIC time (throughput, measured at the receiver)
//   'U' UDP count: replies how many datagrams of a session arrived (loss)
// All namespaces of the machine share CLOCK_MONOTONIC, so client and server
// times can be compared directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cluster/netprobe/probe_socket.h"

namespace silk::cluster::netprobe {

constexpr int64_t kBucketNs = 50'000'000;  // throughput is counted per 50 ms

struct ServeOptions {
  uint16_t port = 0;                        // 0: the kernel picks; printed as "ready PORT"
  absl::Duration lifetime = absl::Minutes(2);  // the server exits by itself after this
};
absl::Status Serve(const ServeOptions& options);

struct RttOptions {
  Endpoint peer;
  int count = 20;
  absl::Duration interval = absl::Milliseconds(10);
  absl::Duration duration = absl::ZeroDuration();  // non-zero: ping for this long instead of `count` times
  absl::Duration timeout = absl::Seconds(10);      // for one round trip
  bool timeline = false;                           // print every sample
};
absl::Status MeasureRtt(const RttOptions& options);

struct ThroughputOptions {
  Endpoint peer;
  int flows = 4;
  absl::Duration seconds = absl::Seconds(3);
  absl::Duration skip = absl::Seconds(1);  // slow start: not part of the steady rate
  std::string congestion;                  // TCP congestion control, "" for the default
};
absl::Status MeasureThroughput(const ThroughputOptions& options);

struct UdpOptions {
  Endpoint peer;
  int count = 10000;
  int rate_pps = 5000;
  int size = 1000;
};
absl::Status MeasureUdpLoss(const UdpOptions& options);

}  // namespace silk::cluster::netprobe
