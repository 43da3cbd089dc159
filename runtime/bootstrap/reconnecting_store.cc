#include "runtime/bootstrap/reconnecting_store.h"

#include <utility>

#include "runtime/core/socket.h"

namespace silk::bootstrap {
namespace {
const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}
}  // namespace

ReconnectingStore::ReconnectingStore(std::string host, uint16_t port, absl::Duration io_timeout)
    : host_(std::move(host)), port_(port), io_timeout_(io_timeout) {}

absl::StatusOr<std::shared_ptr<TcpStoreClient>> ReconnectingStore::Client() {
  absl::MutexLock lock(&mu_);
  if (client_ == nullptr) {
    absl::StatusOr<std::unique_ptr<TcpStoreClient>> client = TcpStoreClient::Connect(host_, port_, io_timeout_);
    if (!client.ok()) return client.status();
    client_ = std::shared_ptr<TcpStoreClient>(*std::move(client));
  }
  return client_;
}

template <typename T>
T ReconnectingStore::Checked(const std::shared_ptr<TcpStoreClient>& client, T result) {
  // A Get's own timeout (the key did not appear) arrives as a reply; any other
  // failure may have left the connection mid-request.
  if (!result.ok() && !absl::IsDeadlineExceeded(StatusOf(result))) {
    absl::MutexLock lock(&mu_);
    if (client_ == client) client_.reset();
  }
  return result;
}

absl::Status ReconnectingStore::Set(const std::string& key, const std::string& value) {
  absl::StatusOr<std::shared_ptr<TcpStoreClient>> client = Client();
  if (!client.ok()) return client.status();
  return Checked(*client, (*client)->Set(key, value));
}

absl::StatusOr<std::string> ReconnectingStore::Get(const std::string& key, absl::Duration timeout) {
  absl::StatusOr<std::shared_ptr<TcpStoreClient>> client = Client();
  if (!client.ok()) return client.status();
  return Checked(*client, (*client)->Get(key, timeout));
}

absl::StatusOr<int64_t> ReconnectingStore::Add(const std::string& key, int64_t delta) {
  absl::StatusOr<std::shared_ptr<TcpStoreClient>> client = Client();
  if (!client.ok()) return client.status();
  return Checked(*client, (*client)->Add(key, delta));
}

absl::StatusOr<std::vector<std::string>> ReconnectingStore::MultiGet(const std::vector<std::string>& keys,
                                                                     absl::Duration timeout) {
  absl::StatusOr<std::shared_ptr<TcpStoreClient>> client = Client();
  if (!client.ok()) return client.status();
  return Checked(*client, (*client)->MultiGet(keys, timeout));
}

absl::StatusOr<std::vector<bool>> ReconnectingStore::Check(const std::vector<std::string>& keys) {
  absl::StatusOr<std::shared_ptr<TcpStoreClient>> client = Client();
  if (!client.ok()) return client.status();
  return Checked(*client, (*client)->Check(keys));
}

std::string ReconnectingStore::Describe() const { return "tcp-store " + HostPort(host_, port_); }

}  // namespace silk::bootstrap
