// Gloo's ring all-reduce, as a baseline beside Silk and MPI in allreduce_perf.
// Gloo (Debian's libgloo-dev) has no MPI rendezvous here, so its ranks meet
// through a Silk TCP store hosted by rank 0, whose port the caller shares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/core/types.h"

namespace silk::perf {

class GlooBaseline {
 public:
  // `store_host`:`store_port` is a TcpStoreServer (rank 0 starts one with
  // HostStore); `address` is this rank's IPv4 address for Gloo's connections.
  static absl::StatusOr<std::unique_ptr<GlooBaseline>> Connect(int rank, int size, const std::string& store_host,
                                                               uint16_t store_port, const std::string& address,
                                                               absl::Duration timeout);
  virtual ~GlooBaseline() = default;

  // In place; float16/bfloat16 are not offered by Gloo's public reductions here.
  virtual absl::Status Allreduce(void* data, size_t count, DataType type, ReduceOp op) = 0;
};

// A rendezvous store for Gloo, served from this process until destroyed.
class HostedStore {
 public:
  static absl::StatusOr<std::unique_ptr<HostedStore>> Start();
  virtual ~HostedStore() = default;
  virtual uint16_t port() const = 0;
};

}  // namespace silk::perf
