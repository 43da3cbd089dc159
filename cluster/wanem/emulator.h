// silk-wanem's event loop: moves IP packets between the TUN devices of the
// regions' gateways, through one LinkDirection + DelayLine per direction.
//
// One thread does everything: it reads bursts of packets from every TUN,
// classifies each by destination subnet, lets the link model decide its fate
// and delivery time, and writes due packets to the destination region's TUN.
// A timerfd wakes it for the next delivery; the control socket and signals
// are served by the same epoll loop, so no state is shared between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/core/cluster_spec.h"
#include "cluster/wanem/control_command.h"
#include "cluster/wanem/control_server.h"
#include "cluster/wanem/delay_line.h"
#include "cluster/wanem/link_model.h"

namespace silk::cluster::wanem {

struct EmulatorOptions {
  // Region R's TUN lives in /run/netns/<netns_prefix>R; empty: the current namespace.
  std::string netns_prefix = "silk-gw-";
  // The TUN device in each gateway namespace. With an empty netns_prefix all TUNs
  // share one namespace, so the i-th region's device is <tun_name><i> (tun_name
  // "wan" gives wan0, wan1, ...).
  std::string tun_name = "wan0";
  std::string control_path;
  uint64_t seed = 1;
  size_t max_delay_line_bytes = size_t{256} << 20;  // per direction
  // Run at a real-time priority, so that busy neighbours (compilers) do not delay
  // deliveries; falls back to normal scheduling with a warning when not allowed.
  bool realtime = false;
  // Move TCP super-packets (TSO/GSO through the TUN's virtio-net header) on
  // lossless links, as a real host's NIC would take them; see packet.h.
  bool offload = true;
  // While packets stream, wake to deliver them at most this often: each wake
  // then delivers every packet due, up to this late, and a packet alone is on
  // time. Waking per packet (0) preempts the ranks' compute (the emulator runs
  // at real-time priority) and wakes their receiving threads once per packet.
  // What 1 ms saves and costs: cluster/README.md, "Delivery batches".
  int64_t delivery_batch_ns = 1'000'000;
};

class Emulator {
 public:
  static absl::StatusOr<std::unique_ptr<Emulator>> Create(const ClusterSpec& spec, const EmulatorOptions& options);
  ~Emulator();

  // Forwards until SIGTERM, SIGINT or SIGHUP.
  absl::Status Run();

 private:
  struct Port {
    std::string region;
    Ipv4Subnet subnet;
    int tun_fd = -1;
    bool offload = false;  // the kernel may hand this TUN super-packets now
  };
  struct Direction {
    int from;
    int to;
    LinkDirection model;
    DelayLine line;
  };

  Emulator() = default;
  absl::Status Setup(const ClusterSpec& spec, const EmulatorOptions& options);
  void ReadBurst(int port, int64_t now_ns);
  void Deliver(int64_t now_ns);
  void ArmTimer(int64_t deadline_ns);
  // Offloads on for the TUNs whose outgoing links are all lossless: a lost
  // super-packet would lose all of its segments at once.
  absl::Status UpdateOffloads();
  std::string HandleCommand(absl::string_view line);
  std::string StatsJson(int64_t now_ns) const;
  Direction* FindDirection(int from, int to);
  int PortOfRegion(absl::string_view region) const;

  std::vector<Port> ports_;
  std::vector<Direction> directions_;
  std::vector<int> direction_index_;  // [from * ports + to] -> index in directions_, or -1
  std::unique_ptr<ControlServer> control_;
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  int signal_fd_ = -1;
  int64_t armed_deadline_ns_ = -1;
  int64_t delivery_batch_ns_ = 0;
  int64_t last_delivery_ns_ = INT64_MIN / 2;  // when Deliver() last handed packets over
  uint64_t unroutable_packets_ = 0;
  uint64_t not_ipv4_packets_ = 0;
  bool vnet_header_ = false;      // packets on the TUNs carry a virtio-net header
  std::vector<uint8_t> scratch_;  // one packet being classified
};

// CLOCK_MONOTONIC in nanoseconds: the clock every deadline uses.
int64_t MonotonicNowNs();

}  // namespace silk::cluster::wanem
