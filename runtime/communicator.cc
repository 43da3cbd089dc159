#include "runtime/communicator.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"
#include "runtime/rank_info.pb.h"
#include "runtime/transport/tcp/handshake.h"
#include "runtime/transport/tcp/tcp_transport.h"

namespace silk {
namespace {

// Bootstrap exchanges are small and happen once; they get their own bound.
constexpr absl::Duration kBootstrapTimeout = absl::Minutes(2);

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

  SILK_ASSIGN_OR_RETURN(auto transport,
                        transport::tcp::TcpTransport::Listen(comm->rank_, size, TcpOptionsFrom(config)));

  RankInfo mine;
  mine.set_rank(comm->rank_);
  mine.set_node(config.node);
  mine.set_region(config.region);
  SILK_ASSIGN_OR_RETURN(std::string host, transport::tcp::LocalIpv4Address(config.socket_ifname));
  mine.set_host(host);
  mine.set_port(transport->port());
  mine.set_lanes(config.lanes);
  if (comm->rank_ == 0) {
    uint64_t job_id;
    std::string random = transport::tcp::RandomBytes(sizeof(job_id));
    std::memcpy(&job_id, random.data(), sizeof(job_id));
    mine.set_job_id(job_id);
    mine.set_token_from_environment(!config.job_token.empty());
    // Without SILK_JOB_TOKEN, rank 0 derives a fresh secret and shares it through the bootstrap channel.
    mine.set_job_token(config.job_token.empty() ? transport::tcp::RandomBytes(32) : "");
  }
  SILK_ASSIGN_OR_RETURN(std::vector<std::string> gathered,
                        bootstrap->AllGather(mine.SerializeAsString(), kBootstrapTimeout));

  std::vector<RankInfo> infos(size);
  for (int r = 0; r < size; ++r) {
    if (!infos[r].ParseFromString(gathered[r]) || infos[r].rank() != r) {
      return absl::DataLossError(absl::StrFormat("bootstrap record of rank %d is malformed", r));
    }
    if (infos[r].lanes() != config.lanes) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "ranks disagree on SILK_LANES: rank %d uses %d, rank %d uses %d", comm->rank_, config.lanes, r,
          infos[r].lanes()));
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
  }
  SILK_RETURN_IF_ERROR(transport->Connect(endpoints, comm->job_id_, token, absl::Now() + kBootstrapTimeout));
  Log(LogLevel::kInfo, "rank %d of %d on node %s (region %s) connected with %d lanes per peer", comm->rank_, size,
      config.node, config.region, config.lanes);

  comm->bootstrap_ = std::move(bootstrap);
  comm->transport_ = std::move(transport);
  comm->engine_ = std::make_unique<Engine>(comm->transport_.get(), comm->rank_);
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

WorkPtr Communicator::Submit(const OpDescriptor& descriptor, absl::Duration timeout, OpBody body) {
  if (timeout <= absl::ZeroDuration()) timeout = config_.timeout;
  return engine_->Submit(descriptor, timeout, std::move(body));
}

}  // namespace silk
