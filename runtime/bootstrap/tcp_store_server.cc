#include "runtime/bootstrap/tcp_store.h"

#include <utility>

#include "runtime/bootstrap/store_server_loop.h"
#include "runtime/core/status_macros.h"

namespace silk::bootstrap {
namespace {
// Connections a burst of ranks may open before the loop accepts them.
constexpr int kListenBacklog = 1024;
}  // namespace

absl::StatusOr<std::unique_ptr<TcpStoreServer>> TcpStoreServer::Start(const std::string& bind_address,
                                                                      uint16_t port) {
  SILK_ASSIGN_OR_RETURN(ScopedFd listener, ListenTcp(bind_address, port, kListenBacklog));
  const uint16_t bound_port = LocalPort(listener.get());
  SILK_ASSIGN_OR_RETURN(std::unique_ptr<StoreServerLoop> loop,
                        StoreServerLoop::Create(std::move(listener),
                                                "tcp-store server " + HostPort(bind_address, bound_port)));
  return std::unique_ptr<TcpStoreServer>(new TcpStoreServer(bind_address, bound_port, std::move(loop)));
}

TcpStoreServer::TcpStoreServer(std::string bind_address, uint16_t port, std::unique_ptr<StoreServerLoop> loop)
    : bind_address_(std::move(bind_address)), port_(port), loop_(std::move(loop)) {
  thread_ = std::thread([loop = loop_.get()] { loop->Run(); });
}

TcpStoreServer::~TcpStoreServer() {
  loop_->RequestStop();
  thread_.join();
}

}  // namespace silk::bootstrap
