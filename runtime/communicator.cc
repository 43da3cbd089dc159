#include "runtime/communicator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/synchronization/mutex.h"
#include "runtime/core/cluster_spec.h"
#include "absl/strings/str_format.h"
#include "runtime/core/cpu_set.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"
#include "runtime/rank_info.pb.h"
#include "runtime/transport/routed_transport.h"
#include "runtime/transport/shm/shm_transport.h"
#include "runtime/transport/handshake.h"
#include "runtime/transport/tcp/tcp_transport.h"

namespace silk {
namespace {

// Bootstrap exchanges are small and happen once; they get their own bound.
constexpr absl::Duration kBootstrapTimeout = absl::Minutes(2);

// Lanes and socket settings for connections that cross between two regions:
// enough lanes that their windows cover the link's bandwidth-delay product.
struct WanSettings {
  int lanes;
  transport::SocketOptions socket;
};

WanSettings WanSettingsFor(const Config& config, const cluster::Link* link) {
  double rate_bps = link ? static_cast<double>(link->bandwidth_bps()) : config.link_rate_bps;
  double rtt_s = link ? link->rtt_ms() / 1000.0 : absl::ToDoubleSeconds(config.link_rtt);
  double bdp_bytes = rate_bps / 8.0 * rtt_s;
  int lanes = config.wan_lanes;
  if (lanes == 0) lanes = std::clamp(static_cast<int>(std::ceil(bdp_bytes / (2 << 20))), 2, 8);
  WanSettings wan{lanes, {}};
  wan.socket.buffer_bytes = config.socket_buffer_bytes > 0
                                ? config.socket_buffer_bytes
                                : static_cast<size_t>(std::clamp(2.0 * bdp_bytes / lanes, 1.0 * (1 << 20), 16.0 * (1 << 20)));
  wan.socket.congestion = config.wan_congestion;
  wan.socket.notsent_lowat_bytes = config.wan_notsent_lowat_bytes;
  return wan;
}

// SILK_REGION wins; else the cluster spec places this node; else "default".
absl::StatusOr<std::string> ResolveRegion(const Config& config, const cluster::ClusterSpec* spec) {
  if (!config.region.empty()) return config.region;
  if (spec == nullptr) return std::string("default");
  auto region = cluster::RegionOfNode(*spec, config.node);
  if (!region.ok()) {
    return absl::NotFoundError(absl::StrFormat(
        "node \"%s\" is not in the cluster spec %s (set SILK_NODE or SILK_REGION, or add the node)", config.node,
        config.cluster_spec));
  }
  return *region;
}

transport::tcp::TcpOptions TcpOptionsFrom(const Config& config) {
  transport::tcp::TcpOptions options;
  options.lanes = config.lanes;
  options.progress_threads = config.progress_threads;
  options.stripe_bytes = config.stripe_bytes;
  options.socket.buffer_bytes = config.EffectiveSocketBuffer();
  options.socket.congestion = config.congestion;
  options.port = config.port;
  return options;
}

// The ranks of this node (`local`, this one included) exchange data through
// shared memory, the others through `tcp`. TCP stays joined to the local ranks
// too (its lanes carry nothing to them); either path failing fails both.
absl::StatusOr<std::unique_ptr<transport::Transport>> WithSharedMemory(std::unique_ptr<transport::Transport> tcp,
                                                                      const std::vector<int>& local,
                                                                      uint64_t job_id, const std::string& token,
                                                                      const std::string& node) {
  const int rank = tcp->rank(), size = tcp->size();
  auto shm = transport::shm::ShmTransport::Create(rank, size, local, job_id, token, transport::shm::ShmOptions{},
                                                  absl::Now() + kBootstrapTimeout);
  if (!shm.ok()) {
    return absl::Status(shm.status().code(),
                        absl::StrFormat("shared memory among the %d ranks of node %s: %s (SILK_SHM must be the same "
                                        "on every rank; SILK_SHM=0 uses loopback TCP instead)",
                                        local.size(), node, shm.status().message()));
  }
  std::vector<int> routes(size, 0);
  for (int r : local) routes[r] = 1;
  std::vector<std::unique_ptr<transport::Transport>> parts;
  parts.push_back(std::move(tcp));
  parts.push_back(std::move(*shm));
  SILK_ASSIGN_OR_RETURN(auto routed, transport::RoutedTransport::Create(std::move(parts), std::move(routes)));
  return std::unique_ptr<transport::Transport>(std::move(routed));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Create(std::unique_ptr<bootstrap::Bootstrap> bootstrap,
                                                                   const Config& config) {
  if (bootstrap == nullptr) return absl::InvalidArgumentError("Communicator::Create needs a bootstrap");
  std::unique_ptr<Communicator> comm(new Communicator());
  comm->config_ = config;
  comm->rank_ = bootstrap->rank();
  const int size = bootstrap->size();
  SetLogLevel(config.log_level);
  SetLogRank(comm->rank_);
  if (!config.mutex_deadlock_checks) absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Every thread of the communicator starts inside Create (or from one started
  // here) and inherits this thread's CPUs: with SILK_CPUS, all of them run there.
  ScopedThreadCpus place_threads(config.cpus);
  if (!place_threads.status().ok()) {
    return absl::Status(place_threads.status().code(),
                        absl::StrFormat("SILK_CPUS: %s", place_threads.status().message()));
  }

  if (!config.cluster_spec.empty()) {
    SILK_ASSIGN_OR_RETURN(cluster::ClusterSpec spec, cluster::LoadSpec(config.cluster_spec));
    comm->spec_ = std::make_unique<cluster::ClusterSpec>(std::move(spec));
  }
  SILK_ASSIGN_OR_RETURN(std::string region, ResolveRegion(config, comm->spec_.get()));

  transport::tcp::TcpOptions tcp = TcpOptionsFrom(config);
  // Accepted sockets take the listener's buffer before their handshake, and the
  // TCP window scale is fixed then: give the listener the largest buffer any
  // tier uses, so WAN connections can open their windows fully.
  transport::tcp::TcpOptions listen_options = tcp;
  listen_options.socket.buffer_bytes = std::max(tcp.socket.buffer_bytes, size_t{16} << 20);
  listen_options.socket.congestion.clear();
  SILK_ASSIGN_OR_RETURN(auto transport, transport::tcp::TcpTransport::Listen(comm->rank_, size, listen_options));

  RankInfo mine;
  mine.set_rank(comm->rank_);
  mine.set_node(config.node);
  mine.set_region(region);
  mine.set_wan_lanes(config.wan_lanes);
  SILK_ASSIGN_OR_RETURN(std::string host, LocalIpv4Address(config.socket_ifname));
  mine.set_host(host);
  mine.set_port(transport->port());
  mine.set_lanes(config.lanes);
  mine.set_probe_tiers(config.probe_tiers);
  mine.set_shm(config.shm);
  if (comm->rank_ == 0) {
    uint64_t job_id;
    std::string random = transport::RandomBytes(sizeof(job_id));
    std::memcpy(&job_id, random.data(), sizeof(job_id));
    mine.set_job_id(job_id);
    mine.set_token_from_environment(!config.job_token.empty());
    // Without SILK_JOB_TOKEN, rank 0 derives a fresh secret and shares it through the bootstrap channel.
    mine.set_job_token(config.job_token.empty() ? transport::RandomBytes(32) : "");
  }
  SILK_ASSIGN_OR_RETURN(std::vector<std::string> gathered,
                        bootstrap->AllGather(mine.SerializeAsString(), kBootstrapTimeout));

  std::vector<RankInfo> infos(size);
  for (int r = 0; r < size; ++r) {
    if (!infos[r].ParseFromString(gathered[r]) || infos[r].rank() != r) {
      return absl::DataLossError(absl::StrFormat("bootstrap record of rank %d is malformed", r));
    }
    if (infos[r].lanes() != config.lanes || infos[r].wan_lanes() != config.wan_lanes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ranks disagree on SILK_LANES/SILK_WAN_LANES: rank %d uses %d/%d, rank %d uses %d/%d", comm->rank_,
          config.lanes, config.wan_lanes, r, infos[r].lanes(), infos[r].wan_lanes()));
    }
    if (infos[r].probe_tiers() != config.probe_tiers || infos[r].shm() != config.shm) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ranks disagree on SILK_PROBE_TIERS/SILK_SHM: rank %d uses %d/%d, rank %d uses %d/%d", comm->rank_,
          config.probe_tiers, config.shm, r, infos[r].probe_tiers(), infos[r].shm()));
    }
  }
  comm->job_id_ = infos[0].job_id();
  std::string token = infos[0].token_from_environment() ? config.job_token : infos[0].job_token();
  if (token.empty()) {
    return absl::FailedPreconditionError(
        "rank 0 took its job token from SILK_JOB_TOKEN but this rank has none: set it on every rank");
  }

  // Placement: local rank = order among the ranks that share this node.
  std::vector<transport::tcp::PeerEndpoint> endpoints(size);
  for (int r = 0; r < size; ++r) {
    RankPlacement placement{r, infos[r].node(), infos[r].region(), 0};
    for (int q = 0; q < r; ++q) placement.local_rank += infos[q].node() == infos[r].node() ? 1 : 0;
    comm->placements_.push_back(placement);
    // Peers on this node are reached over loopback; others at their published address.
    endpoints[r].host = infos[r].node() == config.node ? "127.0.0.1" : infos[r].host();
    endpoints[r].port = static_cast<uint16_t>(infos[r].port());
    if (infos[r].region() != region) {
      const cluster::Link* link =
          comm->spec_ ? cluster::FindLink(*comm->spec_, region, infos[r].region()) : nullptr;
      WanSettings wan = WanSettingsFor(config, link);
      endpoints[r].lanes = wan.lanes;
      endpoints[r].socket = wan.socket;
    }
  }
  SILK_RETURN_IF_ERROR(transport->Connect(endpoints, comm->job_id_, token, absl::Now() + kBootstrapTimeout));
  Log(LogLevel::kInfo, "rank %d of %d on node %s (region %s) connected: %d lanes to each peer in the region",
      comm->rank_, size, config.node, region, config.lanes);

  std::unique_ptr<transport::Transport> joined = std::move(transport);
  std::vector<int> local;
  for (int r = 0; r < size; ++r) {
    if (infos[r].node() == config.node) local.push_back(r);
  }
  if (config.shm && local.size() >= 2) {
    SILK_ASSIGN_OR_RETURN(joined, WithSharedMemory(std::move(joined), local, comm->job_id_, token, config.node));
    Log(LogLevel::kInfo, "rank %d shares memory with the %d ranks of node %s", comm->rank_, local.size(),
        config.node);
  }

  {
    std::vector<std::string> regions;
    for (const RankPlacement& p : comm->placements_) {
      if (std::find(regions.begin(), regions.end(), p.region) == regions.end()) regions.push_back(p.region);
    }
    comm->num_regions_ = static_cast<int>(regions.size());
  }
  comm->bootstrap_ = std::move(bootstrap);
  comm->transport_ = std::move(joined);
  if (config.probe_tiers && comm->num_regions_ > 1) {  // inside one region nothing needs the model yet
    SILK_ASSIGN_OR_RETURN(comm->tiers_, ProbeTiers(*comm, config.probe_bytes, std::min(config.timeout, kBootstrapTimeout)));
    Log(LogLevel::kInfo, "network tiers: %s", comm->tiers_.ToString());
  }
  comm->engine_ = std::make_unique<Engine>(comm->transport_.get(), comm->rank_, comm->config_.engine_streams);
  return comm;
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateFromMpi(const Config& config) {
  SILK_ASSIGN_OR_RETURN(auto bootstrap, bootstrap::CreateMpiBootstrap());
  return Create(std::move(bootstrap), config);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateFromEnvironment(const Config& config) {
  SILK_ASSIGN_OR_RETURN(auto bootstrap, bootstrap::CreateEnvBootstrap(config));
  return Create(std::move(bootstrap), config);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateDefault() {
  SILK_ASSIGN_OR_RETURN(Config config, Config::FromEnvironment());
  if (bootstrap::LaunchedByMpi()) return CreateFromMpi(config);
  return CreateFromEnvironment(config);
}

Communicator::~Communicator() {
  engine_.reset();     // finishes queued operations first
  transport_.reset();  // then says goodbye to the peers
}

int Communicator::local_size() const {
  int count = 0;
  for (const auto& p : placements_) count += p.node == node() ? 1 : 0;
  return count;
}

absl::Status Communicator::status() const {
  absl::Status engine = engine_->status();
  return engine.ok() ? transport_->status() : engine;
}

void Communicator::Abort(const absl::Status& reason) { engine_->Abort(reason); }

WorkPtr Communicator::Submit(const OpDescriptor& descriptor, absl::Duration timeout, OpBody body, bool may_overlap) {
  if (timeout <= absl::ZeroDuration()) timeout = config_.timeout;
  return engine_->Submit(descriptor, timeout, std::move(body), may_overlap);
}

}  // namespace silk
