// Helpers shared by the bootstrap tests: a store server on a loopback port
// the kernel picks, clients connected to it, and a port nobody listens on.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "runtime/core/socket.h"
#include "runtime/bootstrap/tcp_store.h"

namespace silk::bootstrap::testing {

inline std::unique_ptr<TcpStoreServer> StartLoopbackServer() {
  auto server = TcpStoreServer::Start("127.0.0.1", 0);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

inline std::unique_ptr<TcpStoreClient> ConnectClient(const TcpStoreServer& server,
                                                     absl::Duration timeout = absl::Seconds(10)) {
  auto client = TcpStoreClient::Connect("127.0.0.1", server.port(), timeout);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// A loopback port that was free a moment ago (bound to port 0, then closed).
inline uint16_t UnusedLoopbackPort() {
  auto listener = ListenTcp("127.0.0.1", 0, 1);
  EXPECT_TRUE(listener.ok()) << listener.status();
  if (!listener.ok()) return 0;
  return LocalPort(listener->get());
}

}  // namespace silk::bootstrap::testing
