// A TcpStoreClient that connects again after a failure. A TcpStoreClient stays
// broken after its first I/O error (a retry could apply a request twice); a
// long-lived user of the store, such as an elastic job's membership, which
// must outlast a partition between it and the coordinator, wants the next
// call to try a fresh connection instead. Only idempotent use is safe: a Set,
// or an Add whose double application the caller tolerates.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "runtime/bootstrap/store.h"
#include "runtime/bootstrap/tcp_store.h"

namespace silk::bootstrap {

class ReconnectingStore : public Store {
 public:
  // `io_timeout` bounds each connection attempt and each Set, Add and Check.
  ReconnectingStore(std::string host, uint16_t port, absl::Duration io_timeout);

  absl::Status Set(const std::string& key, const std::string& value) override;
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  absl::StatusOr<std::vector<std::string>> MultiGet(const std::vector<std::string>& keys,
                                                    absl::Duration timeout) override;
  absl::StatusOr<std::vector<bool>> Check(const std::vector<std::string>& keys) override;
  std::string Describe() const override;

 private:
  // The current connection, made now if there is none.
  absl::StatusOr<std::shared_ptr<TcpStoreClient>> Client();
  // Forgets `client` after it failed with `status` (a key that did not appear
  // in time leaves the connection as it was).
  template <typename T>
  T Checked(const std::shared_ptr<TcpStoreClient>& client, T result);

  const std::string host_;
  const uint16_t port_;
  const absl::Duration io_timeout_;
  absl::Mutex mu_;
  std::shared_ptr<TcpStoreClient> client_ ABSL_GUARDED_BY(mu_);
};

}  // namespace silk::bootstrap
