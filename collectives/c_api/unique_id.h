// silk_get_unique_id / silk_comm_init_rank (NCCL's ncclGetUniqueId /
// ncclCommInitRank): the id names a rendezvous store that the process which
// made the id hosts, and a nonce that keeps communicators apart on it.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/bootstrap/bootstrap.h"

namespace silk::c_api {

// Starts the store (on every interface, a port the kernel chooses) and
// returns the id's text, at most `max_bytes` - 1 characters: "silk-uid
// host:port nonce". The store lives until every communicator of this process
// made from the id is finalized (or the process exits, if none is made here).
absl::StatusOr<std::string> NewUniqueId(const std::string& socket_ifname, size_t max_bytes);

// A bootstrap through the store that `id` names, as `rank` of `size`; it keeps
// the store alive when this process hosts it.
absl::StatusOr<std::unique_ptr<bootstrap::Bootstrap>> UniqueIdBootstrap(const std::string& id, int rank, int size,
                                                                       absl::Duration timeout);

}  // namespace silk::c_api
