#include "collectives/c_api/unique_id.h"

#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "runtime/bootstrap/store_bootstrap.h"
#include "runtime/bootstrap/tcp_store.h"
#include "runtime/core/socket.h"
#include "runtime/core/status_macros.h"

namespace silk::c_api {
namespace {

// The stores this process hosts, by the nonce of their id.
absl::Mutex stores_mu;
absl::flat_hash_map<std::string, std::shared_ptr<bootstrap::TcpStoreServer>>& Stores() {
  static auto* stores = new absl::flat_hash_map<std::string, std::shared_ptr<bootstrap::TcpStoreServer>>();
  return *stores;
}

class StoreIdBootstrap : public bootstrap::Bootstrap {
 public:
  StoreIdBootstrap(std::shared_ptr<bootstrap::TcpStoreServer> server, std::shared_ptr<bootstrap::Store> client,
                   int rank, int size, const std::string& nonce)
      : server_(std::move(server)),
        bootstrap_(std::move(client), rank, size, "silk/uid/" + nonce) {}
  int rank() const override { return bootstrap_.rank(); }
  int size() const override { return bootstrap_.size(); }
  absl::StatusOr<std::vector<std::string>> AllGather(const std::string& mine, absl::Duration timeout) override {
    return bootstrap_.AllGather(mine, timeout);
  }
  std::string Describe() const override { return "unique id, " + bootstrap_.Describe(); }

 private:
  std::shared_ptr<bootstrap::TcpStoreServer> server_;  // destroyed after the client below
  bootstrap::StoreBootstrap bootstrap_;
};

}  // namespace

absl::StatusOr<std::string> NewUniqueId(const std::string& socket_ifname, size_t max_bytes) {
  SILK_ASSIGN_OR_RETURN(const std::string host, LocalIpv4Address(socket_ifname));
  SILK_ASSIGN_OR_RETURN(std::unique_ptr<bootstrap::TcpStoreServer> server,
                        bootstrap::TcpStoreServer::Start("0.0.0.0", 0));
  std::random_device random;
  const std::string nonce = absl::StrFormat("%08x%08x", random(), random());
  std::string id = absl::StrFormat("silk-uid %s %s", HostPort(host, server->port()), nonce);
  if (id.size() >= max_bytes) return absl::InternalError("silk_get_unique_id: the id does not fit");
  absl::MutexLock lock(&stores_mu);
  Stores()[nonce] = std::move(server);
  return id;
}

absl::StatusOr<std::unique_ptr<bootstrap::Bootstrap>> UniqueIdBootstrap(const std::string& id, int rank, int size,
                                                                       absl::Duration timeout) {
  std::vector<std::string> parts = absl::StrSplit(id, ' ');
  std::vector<std::string> address = parts.size() == 3 ? absl::StrSplit(parts[1], ':') : std::vector<std::string>{};
  uint32_t port = 0;
  if (parts.size() != 3 || parts[0] != "silk-uid" || address.size() != 2 || !absl::SimpleAtoi(address[1], &port) ||
      port == 0 || port > 65535) {
    return absl::InvalidArgumentError("silk_comm_init_rank: the id was not made by silk_get_unique_id");
  }
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrFormat("silk_comm_init_rank: rank %d of %d", rank, size));
  }
  std::shared_ptr<bootstrap::TcpStoreServer> server;
  {
    absl::MutexLock lock(&stores_mu);
    auto it = Stores().find(parts[2]);
    if (it != Stores().end()) server = it->second;
  }
  SILK_ASSIGN_OR_RETURN(std::unique_ptr<bootstrap::TcpStoreClient> client,
                        bootstrap::TcpStoreClient::Connect(address[0], static_cast<uint16_t>(port), timeout));
  if (server != nullptr) {
    // The communicator holds the store from now on; the registry lets go.
    absl::MutexLock lock(&stores_mu);
    Stores().erase(parts[2]);
  }
  return std::unique_ptr<bootstrap::Bootstrap>(std::make_unique<StoreIdBootstrap>(
      std::move(server), std::shared_ptr<bootstrap::Store>(std::move(client)), rank, size, parts[2]));
}

}  // namespace silk::c_api
