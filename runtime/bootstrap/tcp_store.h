// Silk's TCP rendezvous store, like c10d's TCPStore: rank 0 hosts a
// TcpStoreServer, every rank (rank 0 included) talks to it through a
// TcpStoreClient. The wire format is in store_protocol.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/core/socket.h"
#include "runtime/bootstrap/store.h"

namespace silk::bootstrap {

class StoreServerLoop;

// Serves the store from one background thread that polls every connection.
// Blocking gets wait on the server, which replies when the keys appear or at
// the requested timeout; no client polls. Garbage, truncated, oversized or
// silent clients only ever lose their own connection.
class TcpStoreServer {
 public:
  // Listens on bind_address:port (IPv4; "0.0.0.0" for every interface; port 0
  // lets the kernel choose, see port()) and starts serving.
  static absl::StatusOr<std::unique_ptr<TcpStoreServer>> Start(const std::string& bind_address, uint16_t port);
  // Stops promptly: wakes and joins the thread, closes every socket. Clients
  // waiting in a get see their connection close.
  ~TcpStoreServer();

  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  uint16_t port() const { return port_; }
  // "bind_address:port", for messages.
  std::string address() const { return HostPort(bind_address_, port_); }

 private:
  TcpStoreServer(std::string bind_address, uint16_t port, std::unique_ptr<StoreServerLoop> loop);

  const std::string bind_address_;
  const uint16_t port_;
  std::unique_ptr<StoreServerLoop> loop_;
  std::thread thread_;
};

// One connection to a TcpStoreServer. Thread-safe: calls from several threads
// take turns on the connection. Once an I/O error breaks the connection, every
// later call fails with that first error (the server may have seen half a
// request; retrying could apply it twice).
class TcpStoreClient : public Store {
 public:
  // Connects, retrying with backoff until `timeout` passes (the server may
  // start after its clients). `timeout` also bounds each later Set, Add and
  // Check round trip.
  static absl::StatusOr<std::unique_ptr<TcpStoreClient>> Connect(const std::string& host, uint16_t port,
                                                                 absl::Duration timeout);

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  absl::StatusOr<std::vector<std::string>> MultiGet(const std::vector<std::string>& keys,
                                                    absl::Duration timeout) override;
  absl::StatusOr<std::vector<bool>> Check(const std::vector<std::string>& keys) override;
  // "tcp-store host:port".
  std::string Describe() const override;

 private:
  struct Reply {
    uint8_t code = 0;
    std::string body;
  };

  TcpStoreClient(std::string host, uint16_t port, absl::Duration io_timeout, ScopedFd fd);

  // Sends one request frame and reads its reply by `deadline`. `operation`
  // (e.g. "set of key \"a\"") prefixes errors, after the store's address.
  absl::StatusOr<Reply> RoundTrip(const std::string& request, absl::Time deadline, const std::string& operation)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Makes every later call fail with `status`.
  void MarkBroken(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // Turns a kError reply, or a reply code that `operation` cannot get, into a status.
  absl::Status UnexpectedReply(const Reply& reply, const std::string& operation) const;

  const std::string host_;
  const uint16_t port_;
  const absl::Duration io_timeout_;
  absl::Mutex mu_;
  ScopedFd fd_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

}  // namespace silk::bootstrap
