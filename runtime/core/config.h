// The one place where Silk's environment variables are read. Everything else
// receives a typed Config; nothing below this reads getenv().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace silk {

struct Config {
  // Default per-operation timeout (SILK_TIMEOUT, e.g. "300s", "5m", or plain seconds).
  absl::Duration timeout = absl::Minutes(5);
  // Bound on every wait while a communicator starts: the store, the bootstrap
  // exchange, connections and handshakes, shared memory, the tier probe
  // (SILK_STARTUP_TIMEOUT). Zero: `timeout`, whoever set it (SILK_TIMEOUT, or
  // a framework's group timeout); see StartupTimeout().
  absl::Duration startup_timeout = absl::ZeroDuration();
  // How long operations across a WAN ride out a silent link before failing with
  // the partition named (SILK_WAN_OUTAGE_TOLERANCE).
  absl::Duration wan_outage_tolerance = absl::Minutes(3);
  // Parallel TCP connections per pair of peers (SILK_LANES).
  int lanes = 2;
  // TCP congestion control for Silk's sockets: "" keeps the system default (SILK_CONGESTION).
  std::string congestion;
  // SO_SNDBUF/SO_RCVBUF per lane in bytes; 0 means "size for the bandwidth-delay
  // product of link_rate_bps and link_rtt" (SILK_SOCKET_BUFFER).
  size_t socket_buffer_bytes = 0;
  // Hints for that sizing until the runtime measures its links (SILK_LINK_RATE in bit/s, SILK_LINK_RTT).
  double link_rate_bps = 10e9;
  absl::Duration link_rtt = absl::Milliseconds(1);
  // Connections to each peer in another region (SILK_WAN_LANES); 0 sizes them
  // from the cross-region link's bandwidth-delay product.
  int wan_lanes = 0;
  // Congestion control on cross-region connections (SILK_WAN_CONGESTION).
  std::string wan_congestion = "bbr";
  // Unsent bytes a cross-region connection may hold (SILK_WAN_NOTSENT_LOWAT;
  // 0: the kernel's default, as much as the send buffer). Kept small so that
  // the lanes share a message's tail: a lane slowed by loss recovery does not
  // sit on megabytes that idle lanes could carry.
  size_t wan_notsent_lowat_bytes = 256 << 10;
  // The region-aware all-reduce of a message above the WAN's bandwidth-delay
  // product paces each rank's cross-region sends at its share of the WAN's
  // rate (SILK_WAN_PACING=1, the default; 0 lets congestion control probe for
  // more): the rate measured from earlier all-reduces (runtime/rate_estimator.h),
  // no higher than the cluster spec declares where it does. With
  // SILK_WAN_PACING=2 only a declared rate paces, as before the estimate.
  bool wan_pacing = true;
  bool wan_pacing_measured = true;
  // Cluster spec (SILK_CLUSTER_SPEC): maps this node to its region and gives the
  // links' rates and round trips. Empty: none.
  std::string cluster_spec;
  // Ranks on the same node exchange data through shared memory instead of
  // loopback TCP (SILK_SHM=1, the default; 0 turns it off).
  bool shm = true;
  // Small collectives among ranks that all share one node's memory run on the
  // calling thread through shared slots (SILK_FAST_PATH=1, the default; 0 sends
  // them through the transport like the rest; every rank must agree).
  bool fast_path = true;
  // In several regions, the node phases of the region-aware all-reduce,
  // all-gather, reduce-scatter and broadcast go through the node's shared
  // slots where their blocks fit (SILK_NODE_SLOTS=1; 0, the default, keeps the
  // transport's rings; every rank must agree). Such calls never overlap
  // others (their may_overlap is ignored): the slots keep one order.
  bool node_slots = false;
  // Measure each network tier when a communicator starts (SILK_PROBE_TIERS, 0
  // or 1; every rank must agree), timing bursts of `probe_bytes`.
  bool probe_tiers = true;
  size_t probe_bytes = 4 << 20;
  // Epoll progress threads per communicator (SILK_PROGRESS_THREADS).
  int progress_threads = 2;
  // Engine threads: how many operations submitted with may_overlap may run at
  // once (SILK_ENGINE_STREAMS; 1 runs every operation alone).
  int engine_streams = 4;
  // Messages larger than this are striped across lanes in pieces of this size (SILK_STRIPE_BYTES).
  size_t stripe_bytes = 256 << 10;
  // Pipeline chunk for ring algorithms (SILK_CHUNK_BYTES).
  size_t chunk_bytes = 1 << 20;
  // Idle scratch memory kept between operations, process-wide (SILK_SCRATCH_POOL_MB).
  size_t scratch_pool_bytes = size_t{1} << 30;
  // Algorithm override (SILK_ALGO): "" lets Silk choose.
  std::string algorithm;
  // Shared secret that authenticates connections (SILK_JOB_TOKEN); empty: derived at bootstrap.
  std::string job_token;
  // Where this rank runs (SILK_REGION, SILK_NODE; node defaults to the host name).
  // An empty region is resolved by the communicator: the cluster spec, else "default".
  std::string region;
  std::string node;
  // Interface whose IPv4 address peers on other nodes connect to (SILK_SOCKET_IFNAME);
  // empty picks the first non-loopback interface.
  std::string socket_ifname;
  // First port to listen on (SILK_PORT); 0 lets the kernel choose.
  uint16_t port = 0;
  // CPUs for Silk's own threads (SILK_CPUS, e.g. "0" or "0-1"; empty: wherever
  // the process may run). Keeps the exchange off the cores that compute.
  std::vector<int> cpus;
  // Abseil's mutex deadlock detection (SILK_MUTEX_DEADLOCK_CHECKS=1 keeps it).
  // Debian's Abseil is built with it on: every lock then updates a global
  // lock-order graph under a global lock, about 3x the cost of the lock. The
  // first communicator turns it off for the process unless this is set; the
  // test suite keeps it on to catch lock-order inversions.
  bool mutex_deadlock_checks = false;
  // Log level: 0 errors and warnings, 1 info, 2 debug (SILK_LOG).
  int log_level = 0;
  // SILK_TRACE: each rank writes a Chrome/Perfetto trace of its operations to
  // this path ("%r" becomes the rank, else ".rank<r>.json" is appended) when its
  // communicator closes (runtime/engine/op_trace.h); a process's later
  // communicators add ".comm<n>", split ones ".split<id>". Empty: none.
  std::string trace_path;

  // torchrun-style launch (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK);
  // -1 / empty when unset.
  std::string master_addr;
  int master_port = -1;
  int env_rank = -1;
  int env_world_size = -1;
  int env_local_rank = -1;
  // Port of Silk's own rendezvous store on MASTER_ADDR (SILK_STORE_PORT). Under
  // torchrun (TORCHELASTIC_RUN_ID set) the agent's store already holds
  // MASTER_PORT, so Silk defaults to MASTER_PORT + 1 there; else MASTER_PORT.
  int store_port = -1;
  // Elastic launch (SILK_ELASTIC=1; docs/reliability.md, "Membership"): MASTER_ADDR
  // and MASTER_PORT name a silk-coordinator that no rank hosts, RANK is this
  // process's member id (the same across its restarts), WORLD_SIZE the first
  // membership's size; the job survives lost ranks (Communicator::Reconfigure).
  bool elastic = false;
  // How many times the launcher restarted this member (SILK_ELASTIC_INCARNATION).
  int elastic_incarnation = 0;
  // A member whose heartbeat to the coordinator stopped this long is presumed
  // lost when the others agree on a new membership (SILK_ELASTIC_DEAD_AFTER).
  absl::Duration elastic_dead_after = absl::Seconds(1);
  // How long a lost or restarted member keeps asking to be admitted again
  // (SILK_ELASTIC_REJOIN_TIMEOUT), e.g. across a long partition.
  absl::Duration elastic_rejoin_timeout = absl::Minutes(30);

  // Reads every SILK_* variable; an unparsable value is an error that names it.
  static absl::StatusOr<Config> FromEnvironment();
  // Only the launch variables (MASTER_*, RANK, WORLD_SIZE, LOCAL_RANK,
  // SILK_STORE_PORT), the rest left at their defaults: enough to join the
  // rendezvous and tell the others why this rank cannot start.
  static absl::StatusOr<Config> LaunchFromEnvironment();

  // startup_timeout if set, else timeout.
  absl::Duration StartupTimeout() const { return startup_timeout > absl::ZeroDuration() ? startup_timeout : timeout; }

  // Socket buffer per lane: explicit, or twice the BDP share of one lane.
  size_t EffectiveSocketBuffer() const;
};

// Parses "300", "300s", "5m", "250ms", "1h" into a duration.
absl::StatusOr<absl::Duration> ParseDuration(const std::string& text);
// Parses "1gbit", "300mbit", "10e9" (bit/s) into bits per second.
absl::StatusOr<double> ParseRate(const std::string& text);

}  // namespace silk
