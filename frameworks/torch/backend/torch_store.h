// PyTorch's c10d::Store (the store init_process_group hands to a backend:
// TCPStore, FileStore, HashStore, behind a PrefixStore) seen through Silk's
// bootstrap::Store interface, so StoreBootstrap can rendezvous over it.
// torchrun, mpirun and env:// launches all end up here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "absl/synchronization/mutex.h"
#include "runtime/bootstrap/store.h"

namespace silk::pytorch {

class TorchStore : public bootstrap::Store {
 public:
  explicit TorchStore(c10::intrusive_ptr<::c10d::Store> store) : store_(std::move(store)) {}

  absl::Status Set(const std::string& key, const std::string& value) override;
  // c10d's wait(keys, timeout) then get(key). A c10d failure becomes
  // DeadlineExceeded when it says it timed out, Unavailable otherwise.
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) override;
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  // One wait for all keys, then a get for each.
  absl::StatusOr<std::vector<std::string>> MultiGet(const std::vector<std::string>& keys,
                                                    absl::Duration timeout) override;
  absl::StatusOr<std::vector<bool>> Check(const std::vector<std::string>& keys) override;
  std::string Describe() const override { return "torch.distributed store"; }

 private:
  const c10::intrusive_ptr<::c10d::Store> store_;
  absl::Mutex mu_;  // c10d stores are not all safe to share between threads
};

}  // namespace silk::pytorch
