// CreateEnvBootstrap: torchrun-style rendezvous through a TCP store hosted by rank 0.
#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/bootstrap/store_bootstrap.h"
#include "runtime/bootstrap/tcp_store.h"
#include "runtime/core/config.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"

namespace silk::bootstrap {
namespace {

constexpr char kKeyPrefix[] = "silk/bootstrap";

// A StoreBootstrap that also owns its store client and, on rank 0, the server.
class EnvBootstrap : public Bootstrap {
 public:
  EnvBootstrap(const Config& config, uint16_t port, std::unique_ptr<TcpStoreServer> server,
               std::shared_ptr<TcpStoreClient> client)
      : host_(config.master_addr),
        port_(port),
        server_(std::move(server)),
        bootstrap_(std::make_unique<StoreBootstrap>(std::move(client), config.env_rank, config.env_world_size,
                                                    kKeyPrefix)) {}

  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  absl::StatusOr<std::vector<std::string>> AllGather(const std::string& mine, absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    absl::StatusOr<std::vector<std::string>> values = bootstrap_->AllGather(mine, timeout);
    // A rank re-initialising may reach the previous group's store just before
    // rank 0 closes it, and wait there for a session that store never opens:
    // when it goes away, connect again (to rank 0's new store) and retry.
    while (absl::IsUnavailable(values.status()) && bootstrap_->session() < 0 && server_ == nullptr &&
           absl::Now() < deadline) {
      Log(LogLevel::kInfo, "rank %d: the store closed before rank 0 opened a new rendezvous (it was the previous "
          "group's); connecting again", rank());
      absl::StatusOr<std::unique_ptr<TcpStoreClient>> client = TcpStoreClient::Connect(host_, port_, deadline - absl::Now());
      if (!client.ok()) return Prefixed(client.status(), "env bootstrap: connecting again after the store closed: ");
      bootstrap_ = std::make_unique<StoreBootstrap>(std::shared_ptr<TcpStoreClient>(*std::move(client)), rank(),
                                                    size(), kKeyPrefix);
      values = bootstrap_->AllGather(mine, std::max(deadline - absl::Now(), absl::ZeroDuration()));
    }
    if (absl::IsUnavailable(values.status()) && server_ == nullptr) {
      return absl::UnavailableError(absl::StrCat(
          values.status().message(), " (rank 0 hosts the store and stops it when it exits: its log says why)"));
    }
    return values;
  }
  std::string Describe() const override { return bootstrap_->Describe(); }

 private:
  const std::string host_;
  const uint16_t port_;
  // Declared before the client so it is destroyed after the client has disconnected.
  std::unique_ptr<TcpStoreServer> server_;
  std::unique_ptr<StoreBootstrap> bootstrap_;
};

absl::Status CheckLaunchVariables(const Config& config) {
  std::vector<std::string> missing;
  if (config.master_addr.empty()) missing.push_back("MASTER_ADDR");
  if (config.master_port < 1) missing.push_back("MASTER_PORT");
  if (config.env_rank < 0) missing.push_back("RANK");
  if (config.env_world_size < 1) missing.push_back("WORLD_SIZE");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "env bootstrap: environment variable%s %s not set (a torchrun-style launch sets MASTER_ADDR, MASTER_PORT, "
        "RANK and WORLD_SIZE)",
        missing.size() == 1 ? "" : "s", absl::StrJoin(missing, ", ")));
  }
  if (config.master_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("env bootstrap: MASTER_PORT=%d is not a port", config.master_port));
  }
  if (config.env_rank >= config.env_world_size) {
    return absl::InvalidArgumentError(absl::StrFormat("env bootstrap: RANK=%d is not below WORLD_SIZE=%d",
                                                      config.env_rank, config.env_world_size));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Bootstrap>> CreateEnvBootstrap(const Config& config) {
  SILK_RETURN_IF_ERROR(CheckLaunchVariables(config));
  const auto port = static_cast<uint16_t>(config.store_port > 0 ? config.store_port : config.master_port);
  std::unique_ptr<TcpStoreServer> server;
  if (config.env_rank == 0) {
    // A loopback master means a single-host job: do not expose the store to the network.
    std::string bind_address = "0.0.0.0";
    if (IsLoopbackAddress(config.master_addr)) {
      bind_address = config.master_addr == "localhost" ? "127.0.0.1" : config.master_addr;
    }
    absl::StatusOr<std::unique_ptr<TcpStoreServer>> started = TcpStoreServer::Start(bind_address, port);
    if (!started.ok()) {
      return absl::Status(started.status().code(),
                          absl::StrFormat("env bootstrap (rank 0): cannot host the store on port %d (MASTER_PORT, or SILK_STORE_PORT): %s", port,
                                          started.status().message()));
    }
    server = *std::move(started);
  }
  // Connecting waits for rank 0 to come up, as long as the start-up timeout.
  absl::StatusOr<std::unique_ptr<TcpStoreClient>> client =
      TcpStoreClient::Connect(config.master_addr, port, config.StartupTimeout());
  if (!client.ok()) {
    return absl::Status(client.status().code(), absl::StrFormat("env bootstrap (rank %d of %d): %s", config.env_rank,
                                                                config.env_world_size, client.status().message()));
  }
  std::shared_ptr<TcpStoreClient> shared_client = *std::move(client);
  return std::unique_ptr<Bootstrap>(new EnvBootstrap(config, port, std::move(server), std::move(shared_client)));
}

}  // namespace silk::bootstrap
