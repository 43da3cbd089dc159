#include "tests/support/ranks.h"

#include <thread>

#include "absl/strings/str_format.h"
#include "runtime/bootstrap/store_bootstrap.h"
#include "runtime/bootstrap/tcp_store.h"
#include "runtime/transport/routed_transport.h"
#include "runtime/transport/tcp/tcp_transport.h"

namespace silk::testing {

Config TestConfig(int lanes, absl::Duration timeout) {
  Config config;
  config.lanes = lanes;
  config.timeout = timeout;
  config.node = "testnode";
  config.region = "default";
  config.stripe_bytes = 64 << 10;
  config.chunk_bytes = 256 << 10;
  // In-process "regions" share loopback: a measured model would rightly run
  // them flat, and the probe's bytes would blur the tests' counters.
  config.probe_tiers = false;
  config.mutex_deadlock_checks = true;  // a lock-order inversion aborts the test
  return config;
}

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateCommunicators(int n, const Config& config) {
  return CreateCommunicators(n, [&](int) { return config; });
}

absl::StatusOr<std::vector<std::unique_ptr<Communicator>>> CreateCommunicators(
    int n, const std::function<Config(int rank)>& config_for_rank) {
  auto server = bootstrap::TcpStoreServer::Start("127.0.0.1", 0);
  if (!server.ok()) return server.status();
  std::vector<std::unique_ptr<Communicator>> comms(n);
  std::vector<absl::Status> results(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      auto client = bootstrap::TcpStoreClient::Connect("127.0.0.1", (*server)->port(), absl::Seconds(30));
      if (!client.ok()) {
        results[r] = client.status();
        return;
      }
      std::shared_ptr<bootstrap::Store> store = std::move(*client);
      auto comm = Communicator::Create(std::make_unique<bootstrap::StoreBootstrap>(store, r, n, "test"),
                                       config_for_rank(r));
      if (comm.ok()) {
        comms[r] = std::move(*comm);
      } else {
        results[r] = comm.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) {
    if (!results[r].ok()) {
      return absl::Status(results[r].code(), absl::StrFormat("creating rank %d: %s", r, results[r].message()));
    }
  }
  return comms;
}

std::vector<absl::Status> RunOnRanks(std::vector<std::unique_ptr<Communicator>>& comms,
                                     const std::function<absl::Status(Communicator&)>& body) {
  std::vector<absl::Status> results(comms.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < comms.size(); ++r) {
    threads.emplace_back([&, r] { results[r] = body(*comms[r]); });
  }
  for (auto& t : threads) t.join();
  return results;
}

absl::Status RunRanks(int n, const Config& config, const std::function<absl::Status(Communicator&)>& body) {
  auto comms = CreateCommunicators(n, config);
  if (!comms.ok()) return comms.status();
  std::vector<absl::Status> results = RunOnRanks(*comms, body);
  for (size_t r = 0; r < results.size(); ++r) {
    if (!results[r].ok()) {
      return absl::Status(results[r].code(), absl::StrFormat("rank %d: %s", r, results[r].message()));
    }
  }
  return absl::OkStatus();
}

std::vector<uint64_t> LanePacingRates(Communicator& comm, int peer) {
  transport::Transport* t = &comm.transport();
  if (auto* routed = dynamic_cast<transport::RoutedTransport*>(t)) t = &routed->route(peer);
  auto* tcp = dynamic_cast<transport::tcp::TcpTransport*>(t);
  return tcp ? tcp->LanePacingRates(peer) : std::vector<uint64_t>{};
}

}  // namespace silk::testing
