#include "runtime/communicator.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "runtime/core/cluster_spec.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "runtime/core/cpu_set.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/core/node_identity.h"
#include "runtime/startup.h"
#include "runtime/transport/frame.h"
#include "runtime/core/status_macros.h"
#include "runtime/membership.h"
#include "runtime/rank_info.pb.h"
#include "runtime/transport/routed_transport.h"
#include "runtime/transport/shm/shm_transport.h"
#include "runtime/transport/handshake.h"
#include "runtime/transport/tcp/tcp_transport.h"
#include "runtime/wan_settings.h"

namespace silk {

// What this rank sets up before it knows its peers.
struct LocalStart {
  std::unique_ptr<cluster::ClusterSpec> spec;
  std::string region;
  std::string host;  // the address peers on other nodes connect to
  std::unique_ptr<transport::tcp::TcpTransport> transport;  // listening, not yet connected
};

namespace {

// SILK_REGION wins; else the cluster spec places this node; else "default".
absl::StatusOr<std::string> ResolveRegion(const Config& config, const cluster::ClusterSpec* spec) {
  if (!config.region.empty()) return config.region;
  if (spec == nullptr) return std::string("default");
  auto region = cluster::RegionOfNode(*spec, config.node);
  if (!region.ok()) {
    return InvalidArgument(absl::StrFormat(
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
  options.outage_tolerance = config.wan_outage_tolerance;
  // An elastic job goes on without a region cut off past the tolerance
  // rather than waiting out the operations' timeout.
  options.outage_ends_waits = config.elastic;
  return options;
}

// The ranks of this node (`local`, this one included) exchange data through
// shared memory, the others through `tcp`. TCP stays joined to the local ranks
// too (its lanes carry nothing to them); either path failing fails both.
absl::StatusOr<std::unique_ptr<transport::Transport>> WithSharedMemory(std::unique_ptr<transport::Transport> tcp,
                                                                      const std::vector<int>& local,
                                                                      uint64_t job_id, const std::string& token,
                                                                      const std::string& node, absl::Time deadline) {
  const int rank = tcp->rank(), size = tcp->size();
  auto shm = transport::shm::ShmTransport::Create(rank, size, local, job_id, token, transport::shm::ShmOptions{},
                                                  deadline);
  if (!shm.ok()) {
    return WithKind(absl::Status(shm.status().code(),
                                 absl::StrFormat("shared memory among the %d ranks of node %s: %s (SILK_SHM=0 uses "
                                                 "loopback TCP instead)",
                                                 local.size(), node, shm.status().message())),
                    KindOf(shm.status()));
  }
  std::vector<int> routes(size, 0);
  for (int r : local) routes[r] = 1;
  std::vector<std::unique_ptr<transport::Transport>> parts;
  parts.push_back(std::move(tcp));
  parts.push_back(std::move(*shm));
  SILK_ASSIGN_OR_RETURN(auto routed, transport::RoutedTransport::Create(std::move(parts), std::move(routes)));
  return std::unique_ptr<transport::Transport>(std::move(routed));
}

// A start-up wait that failed: what this rank was doing, and, when it ran out
// of time, why the ranks it waited for may be absent. Kind and payloads stay.
absl::Status StartupWaitError(const absl::Status& status, absl::string_view step, const Config& config) {
  std::string hint;
  if (KindOf(status) == ErrorKind::kTimeout) {
    hint = absl::StrFormat(
        " (start-up timeout %s, SILK_STARTUP_TIMEOUT or else the operations' timeout: a rank waited for was not "
        "started, failed or was killed before it got there "
        "(its own log says why), was given another MASTER_ADDR/MASTER_PORT/WORLD_SIZE, or cannot reach this "
        "rank: check SILK_SOCKET_IFNAME and firewalls)",
        absl::FormatDuration(config.StartupTimeout()));
  }
  absl::Status out(status.code(), absl::StrCat(step, " at start-up: ", status.message(), hint));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

// The steps that need no peer: the cluster spec, this rank's region, its
// listening port and address.
absl::StatusOr<LocalStart> StartLocally(const Config& config, int rank, int size, const absl::Status& cpus) {
  if (!cpus.ok()) return absl::Status(cpus.code(), absl::StrFormat("SILK_CPUS: %s", cpus.message()));
  LocalStart local;
  if (!config.cluster_spec.empty()) {
    SILK_ASSIGN_OR_RETURN(cluster::ClusterSpec spec, cluster::LoadSpec(config.cluster_spec));
    local.spec = std::make_unique<cluster::ClusterSpec>(std::move(spec));
  }
  SILK_ASSIGN_OR_RETURN(local.region, ResolveRegion(config, local.spec.get()));
  transport::tcp::TcpOptions tcp = TcpOptionsFrom(config);
  // Accepted sockets take the listener's buffer before their handshake, and the
  // TCP window scale is fixed then: give the listener the largest buffer any
  // tier uses, so WAN connections can open their windows fully.
  tcp.socket.buffer_bytes = std::max(tcp.socket.buffer_bytes, kMaxWanSocketBuffer);
  tcp.socket.congestion.clear();
  SILK_ASSIGN_OR_RETURN(local.transport, transport::tcp::TcpTransport::Listen(rank, size, tcp));
  SILK_ASSIGN_OR_RETURN(local.host, LocalIpv4Address(config.socket_ifname));
  return local;
}

// This rank's start-up record: where it listens, what it must agree on with
// the others, and its failure if it could not start.
RankInfo DescribeThisRank(const Config& config, int rank, const absl::StatusOr<LocalStart>& local) {
  RankInfo mine;
  mine.set_rank(rank);
  mine.set_node(config.node);
  mine.set_node_identity(NodeIdentity());
  if (local.ok()) {
    mine.set_region(local->region);
    mine.set_host(local->host);
    mine.set_port(local->transport->port());
    if (local->spec) {
      mine.set_spec_digest(ShortDigest("silk-cluster-spec", local->spec->SerializeAsString()));
      mine.set_spec_path(config.cluster_spec);
    }
  } else {
    mine.set_startup_error(std::string(local.status().message()));
    mine.set_startup_error_kind(static_cast<int>(KindOf(local.status())));
  }
  mine.set_protocol_version(transport::kProtocolVersion);
  mine.set_lanes(config.lanes);
  mine.set_wan_lanes(OpeningWanSettings(config, nullptr).lanes);
  mine.set_probe_tiers(config.probe_tiers);
  mine.set_shm(config.shm);
  mine.set_fast_path(config.fast_path);
  mine.set_node_slots(config.node_slots);
  mine.set_chunk_bytes(config.chunk_bytes);
  if (!config.job_token.empty()) mine.set_token_digest(ShortDigest(config.job_token, "silk-job-token"));
  if (rank == 0) {
    uint64_t job_id;
    std::string random = transport::RandomBytes(sizeof(job_id));
    std::memcpy(&job_id, random.data(), sizeof(job_id));
    mine.set_job_id(job_id);
    mine.set_token_from_environment(!config.job_token.empty());
    // Without SILK_JOB_TOKEN, rank 0 derives a fresh secret and shares it through the bootstrap channel.
    mine.set_job_token(config.job_token.empty() ? transport::RandomBytes(32) : "");
  }
  return mine;
}

// Every rank's record, through the bootstrap. This rank's own failure comes
// first (the others were told); then any other rank's.
absl::StatusOr<std::vector<RankInfo>> ExchangeRankInfo(bootstrap::Bootstrap& bootstrap, const RankInfo& mine,
                                                       const absl::Status& local, const Config& config) {
  absl::StatusOr<std::vector<std::string>> gathered =
      bootstrap.AllGather(mine.SerializeAsString(), config.StartupTimeout());
  if (!local.ok()) return local;
  if (!gathered.ok()) {
    return StartupWaitError(gathered.status(),
                            absl::StrFormat("exchanging addresses through the bootstrap (%s)", bootstrap.Describe()),
                            config);
  }
  std::vector<RankInfo> infos(bootstrap.size());
  for (int r = 0; r < bootstrap.size(); ++r) {
    if (!infos[r].ParseFromString((*gathered)[r]) || infos[r].rank() != r) {
      return ProtocolError(absl::StrFormat("bootstrap record of rank %d is malformed", r));
    }
  }
  SILK_RETURN_IF_ERROR(PublishedStartupFailure(infos, mine.rank()));
  return infos;
}

// WAN lanes that opened without a declared link (wan_settings.h) get the
// buffers the measured round trip and rate call for. Sized for the longest
// and fastest WAN path measured: rank 0 measures only its own region's.
void SizeWanBuffers(const Config& config, const Communicator& comm, transport::tcp::TcpTransport& tcp) {
  const Tiers& tiers = comm.tiers();
  TierCost sizing;
  for (const TierCost& t : tiers.wan) {
    if (!t.present) continue;
    sizing.rate_settled = sizing.present ? sizing.rate_settled && t.rate_settled : t.rate_settled;
    sizing.present = true;
    sizing.rtt_s = std::max(sizing.rtt_s, t.rtt_s);
    sizing.probed_bytes_per_s = std::max(sizing.probed_bytes_per_s, t.probed_bytes_per_s);
  }
  if (!sizing.present) return;
  std::string sized;
  for (int r = 0; r < comm.size(); ++r) {
    const std::string& region = comm.placements()[r].region;
    if (region == comm.region()) continue;
    const cluster::Link* link = comm.spec() ? cluster::FindLink(*comm.spec(), comm.region(), region) : nullptr;
    const int lanes = OpeningWanSettings(config, link).lanes;
    const std::optional<size_t> bytes = MeasuredWanBuffer(config, lanes, link, sizing);
    if (!bytes) continue;
    if (absl::Status s = tcp.SetPeerSocketBuffer(r, *bytes); !s.ok()) {
      Log(LogLevel::kWarning, "WAN lanes to rank %d keep their opening buffers: %s", r, s.message());
      continue;
    }
    if (sized.empty()) {
      // Buffers at their bound may not cover the link twice over: more lanes would.
      const WanLink measured = MeasuredWanLink(config, sizing);
      const double twice_bdp = 2 * measured.rate_bps / 8 * measured.rtt_s;
      const int wanted = static_cast<int>(std::ceil(twice_bdp / static_cast<double>(kMaxWanSocketBuffer)));
      sized = absl::StrFormat("WAN lanes sized from the probe (rtt %.1f ms, %.0f Mbit/s%s, sized for %.0f): %d lanes "
                              "of %.1f MB each%s",
                              sizing.rtt_s * 1e3, sizing.probed_bytes_per_s * 8 / 1e6,
                              sizing.rate_settled ? "" : " or more", measured.rate_bps / 1e6, lanes, *bytes / 1e6,
                              wanted > lanes ? absl::StrFormat(" (SILK_WAN_LANES=%d would cover it)", wanted) : "");
    }
  }
  if (!sized.empty()) Log(LogLevel::kInfo, "%s", sized);
}

absl::StatusOr<std::string> JobToken(const std::vector<RankInfo>& infos, const Config& config) {
  // CheckAgreement has made sure every rank has SILK_JOB_TOKEN exactly when rank 0 has.
  std::string token = infos[0].token_from_environment() ? config.job_token : infos[0].job_token();
  if (token.empty()) return InvalidArgument("rank 0 sent no job token and this rank has no SILK_JOB_TOKEN");
  return token;
}


}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Create(std::unique_ptr<bootstrap::Bootstrap> bootstrap,
                                                                   const Config& config) {
  return Create(std::move(bootstrap), config, nullptr);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Create(std::unique_ptr<bootstrap::Bootstrap> bootstrap,
                                                                   const Config& config,
                                                                   const TierMemory* tier_memory) {
  if (bootstrap == nullptr) return absl::InvalidArgumentError("Communicator::Create needs a bootstrap");
  std::unique_ptr<Communicator> comm(new Communicator());
  comm->config_ = config;
  comm->rank_ = bootstrap->rank();
  SetLogLevel(config.log_level);
  SetLogRank(comm->rank_);
  if (!config.mutex_deadlock_checks) absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Every thread of the communicator starts inside Create (or from one started
  // here) and inherits this thread's CPUs: with SILK_CPUS, all of them run there.
  ScopedThreadCpus place_threads(config.cpus);
  const absl::Time deadline = absl::Now() + config.StartupTimeout();

  // Steps that need no peer; a failure is published in the exchange, so the
  // other ranks fail at once with its reason instead of waiting.
  absl::StatusOr<LocalStart> local = StartLocally(config, comm->rank_, bootstrap->size(), place_threads.status());
  RankInfo mine = DescribeThisRank(config, comm->rank_, local);
  SILK_ASSIGN_OR_RETURN(std::vector<RankInfo> infos, ExchangeRankInfo(*bootstrap, mine, local.status(), config));
  SILK_RETURN_IF_ERROR(CheckAgreement(infos));
  SILK_ASSIGN_OR_RETURN(std::string token, JobToken(infos, config));
  comm->job_id_ = infos[0].job_id();
  comm->spec_ = std::move(local->spec);
  comm->PlaceRanks(infos);

  transport::tcp::TcpTransport* tcp = local->transport.get();  // owned by comm->transport_ from here on
  SILK_RETURN_IF_ERROR(comm->ConnectPeers(*local, infos, token, deadline));
  comm->bootstrap_ = std::move(bootstrap);
  if (config.probe_tiers && comm->num_regions_ > 1) {  // inside one region nothing needs the model yet
    std::string regions;
    for (const RankPlacement& p : comm->placements_) {
      if (!absl::StrContains(absl::StrCat(",", regions, ","), absl::StrCat(",", p.region, ","))) {
        absl::StrAppend(&regions, regions.empty() ? "" : ",", p.region);
      }
    }
    std::optional<Tiers> known;
    if (tier_memory != nullptr && comm->rank_ == 0) known = tier_memory->find(regions);
    absl::StatusOr<Tiers> tiers = ProbeTiers(*comm, config.probe_bytes,
                                             std::max(deadline - absl::Now(), absl::Seconds(1)),
                                             known ? &*known : nullptr);
    if (!tiers.ok()) return StartupWaitError(tiers.status(), "measuring the network tiers", config);
    comm->tiers_ = *std::move(tiers);
    if (tier_memory != nullptr && comm->rank_ == 0 && !known) tier_memory->keep(regions, comm->tiers_);
    Log(LogLevel::kInfo, "network tiers%s: %s", known ? " (kept from an earlier membership)" : "",
        comm->tiers_.ToString());
    SizeWanBuffers(config, *comm, *tcp);
  }
  comm->engine_ = std::make_unique<Engine>(comm->transport_.get(), comm->rank_, comm->config_.engine_streams);
  comm->root_transport_ = comm->transport_;
  for (int r = 0; r < comm->size(); ++r) comm->root_ranks_.push_back(r);
  if (!config.trace_path.empty()) {
    // The n-th communicator of a process (n > 1) gets its own file: "<path>.comm<n>".
    static std::atomic<int> created{0};
    const int n = ++created;
    const std::string path = n == 1 ? config.trace_path : absl::StrFormat("%s.comm%d", config.trace_path, n);
    comm->engine_->EnableTrace(path, comm->rank_, comm->TiersByRootRank());
  }
  return comm;
}

// Placement: node names (ranks of other machines or network namespaces under
// one name become different nodes), local rank = order among a node's ranks.
void Communicator::PlaceRanks(const std::vector<RankInfo>& infos) {
  const std::vector<std::string> nodes = PlacementNodeNames(infos);
  std::vector<std::string> regions;
  for (int r = 0; r < static_cast<int>(infos.size()); ++r) {
    RankPlacement placement{r, nodes[r], infos[r].region(), 0};
    for (int q = 0; q < r; ++q) placement.local_rank += nodes[q] == nodes[r] ? 1 : 0;
    placements_.push_back(placement);
    if (std::find(regions.begin(), regions.end(), placement.region) == regions.end()) {
      regions.push_back(placement.region);
    }
  }
  num_regions_ = static_cast<int>(regions.size());
  if (nodes[rank_] != infos[rank_].node()) {
    Log(LogLevel::kWarning,
        "rank %d: node name \"%s\" is used by ranks on another machine or network namespace; this rank's node is "
        "\"%s\" (set SILK_NODE to name nodes yourself)",
        rank_, infos[rank_].node(), nodes[rank_]);
  }
}

// TCP lanes to every peer (peers of this node over loopback), then shared
// memory among this node's ranks.
absl::Status Communicator::ConnectPeers(LocalStart& local, const std::vector<RankInfo>& infos,
                                        const std::string& token, absl::Time deadline) {
  const int size = static_cast<int>(infos.size());
  std::vector<transport::tcp::PeerEndpoint> endpoints(size);
  std::vector<int> node_ranks;
  for (int r = 0; r < size; ++r) {
    const bool same_node = placements_[r].node == node();
    if (same_node) node_ranks.push_back(r);
    endpoints[r].host = same_node ? "127.0.0.1" : infos[r].host();
    endpoints[r].port = static_cast<uint16_t>(infos[r].port());
    if (infos[r].region() != region()) {
      const cluster::Link* link = spec_ ? cluster::FindLink(*spec_, region(), infos[r].region()) : nullptr;
      WanSettings wan = OpeningWanSettings(config_, link);
      endpoints[r].lanes = wan.lanes;
      endpoints[r].socket = wan.socket;
      endpoints[r].link = absl::StrFormat("WAN %s<->%s", region(), infos[r].region());  // monitored for outages
    }
  }
  absl::Status connected = local.transport->Connect(endpoints, job_id_, token, deadline);
  if (!connected.ok()) return StartupWaitError(connected, "connecting to the peers", config_);
  Log(LogLevel::kInfo, "rank %d of %d on node %s (region %s) connected: %d lanes to each peer in the region", rank_,
      size, node(), region(), config_.lanes);

  std::unique_ptr<transport::Transport> joined = std::move(local.transport);
  if (config_.shm && node_ranks.size() >= 2) {
    SILK_ASSIGN_OR_RETURN(joined, WithSharedMemory(std::move(joined), node_ranks, job_id_, token, node(), deadline));
    Log(LogLevel::kInfo, "rank %d shares memory with the %d ranks of node %s", rank_, node_ranks.size(), node());
  }
  transport_ = std::move(joined);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateFromMpi(const Config& config) {
  SILK_ASSIGN_OR_RETURN(auto bootstrap, bootstrap::CreateMpiBootstrap());
  return Create(std::move(bootstrap), config);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateFromEnvironment(const Config& config) {
  if (config.elastic) return CreateElastic(config);
  SILK_ASSIGN_OR_RETURN(auto bootstrap, bootstrap::CreateEnvBootstrap(config));
  return Create(std::move(bootstrap), config);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateDefault() {
  absl::StatusOr<Config> config = Config::FromEnvironment();
  if (!config.ok()) return PublishFailedStart(config.status());
  if (bootstrap::LaunchedByMpi()) return CreateFromMpi(*config);
  return CreateFromEnvironment(*config);
}

// A rank whose settings do not even parse still joins the exchange, with the
// launch variables alone, so the others fail at once with its reason instead
// of waiting for it until their start-up timeout.
absl::Status Communicator::PublishFailedStart(const absl::Status& reason) {
  absl::StatusOr<Config> launch = Config::LaunchFromEnvironment();
  if (!launch.ok() || launch->elastic) return reason;  // an elastic job's first epoch names who is missing
  absl::StatusOr<std::unique_ptr<bootstrap::Bootstrap>> bootstrap =
      bootstrap::LaunchedByMpi() ? bootstrap::CreateMpiBootstrap() : bootstrap::CreateEnvBootstrap(*launch);
  if (!bootstrap.ok()) return reason;
  RankInfo mine;
  mine.set_rank((*bootstrap)->rank());
  mine.set_startup_error(std::string(reason.message()));
  mine.set_startup_error_kind(static_cast<int>(KindOf(reason)));
  (*bootstrap)->AllGather(mine.SerializeAsString(), launch->StartupTimeout()).IgnoreError();
  return reason;
}

Communicator::Communicator() = default;

Communicator::~Communicator() {
  engine_.reset();     // finishes queued operations first
  transport_.reset();  // then says goodbye to the peers
  root_transport_.reset();
  membership_.reset();  // stops the heartbeat last: the others see this member leave after its connections
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

std::optional<absl::Status> Communicator::RunHereIfIdle(const OpDescriptor& descriptor, absl::Duration timeout,
                                                        absl::FunctionRef<absl::Status(OpContext&)> body) {
  if (timeout <= absl::ZeroDuration()) timeout = config_.timeout;
  return engine_->RunHereIfIdle(descriptor, timeout, body);
}

std::vector<uint8_t> Communicator::TiersByRootRank() const {
  std::vector<uint8_t> tiers(*std::max_element(root_ranks_.begin(), root_ranks_.end()) + 1, 0);
  for (int r = 0; r < size(); ++r) {
    const RankPlacement& p = placements_[r];
    tiers[root_ranks_[r]] = r == rank_                ? 0
                            : p.region != region()    ? Engine::kTierWan
                            : p.node != node()        ? Engine::kTierRegion
                                                      : Engine::kTierNode;
  }
  return tiers;
}

CommStats Communicator::Stats() const {
  CommStats stats;
  for (int peer = 0; peer < size(); ++peer) {
    if (peer == rank_) continue;
    const RankPlacement& p = placements_[peer];
    CommStats::Tier& tier = p.region != region() ? stats.wan : p.node != node() ? stats.region : stats.node;
    const transport::PeerCounters counters = transport_->counters(peer);
    tier.bytes_sent += counters.bytes_sent;
    tier.bytes_received += counters.bytes_received;
  }
  const Engine::Stats engine = engine_->stats();
  stats.collectives = engine.collectives;
  stats.point_to_point = engine.point_to_point;
  stats.failed = engine.failed;
  stats.collective_time = engine.collective_time;
  stats.point_to_point_time = engine.point_to_point_time;
  return stats;
}

uint32_t Communicator::NextMessageNumber(int peer, int32_t tag, bool send) {
  const uint64_t key = (static_cast<uint64_t>(peer) << 33) | (static_cast<uint64_t>(static_cast<uint32_t>(tag)) << 1) |
                       (send ? 1 : 0);
  absl::MutexLock lock(&numbers_mu_);
  return message_numbers_[key]++;
}

WorkPtr Communicator::Track(uint64_t op_id, const OpDescriptor& descriptor, absl::Duration timeout,
                            std::vector<transport::RequestPtr> requests) {
  if (timeout <= absl::ZeroDuration()) timeout = config_.timeout;
  return engine_->Track(op_id, descriptor, timeout, std::move(requests));
}

}  // namespace silk
