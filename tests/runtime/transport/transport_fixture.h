// Builds N TcpTransports in this process, joined over loopback exactly as
// separate processes would be (listen, exchange ports, connect concurrently).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/transport/tcp/tcp_transport.h"

namespace silk::transport::tcp {

// `link`: every peer is across this monitored link (heartbeats, resumable lanes).
inline std::vector<std::unique_ptr<TcpTransport>> ConnectTransports(int n, TcpOptions options,
                                                                    const std::string& token = "token",
                                                                    const std::string& link = "") {
  std::vector<std::unique_ptr<TcpTransport>> transports;
  std::vector<PeerEndpoint> endpoints;
  for (int r = 0; r < n; ++r) {
    auto t = TcpTransport::Listen(r, n, options);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return {};
    PeerEndpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = (*t)->port();
    endpoint.link = link;
    endpoints.push_back(endpoint);
    transports.push_back(std::move(*t));
  }
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(n);
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      results[r] = transports[r]->Connect(endpoints, 77, token, absl::Now() + absl::Seconds(20));
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < n; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  return transports;
}

inline OpDescriptor TestDescriptor(uint64_t count = 0) {
  OpDescriptor d;
  d.kind = CollectiveKind::kSendRecv;
  d.count = count;
  return d;
}

}  // namespace silk::transport::tcp
