#include "collectives/split.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "collectives/collectives.h"
#include "runtime/core/status_macros.h"

namespace silk {

absl::StatusOr<std::unique_ptr<Communicator>> Split(Communicator& comm, int color, int key, absl::Duration timeout) {
  const int n = comm.size();
  // Each rank's (color, key, next free id): the id is the largest, so that it
  // is new to every member, whatever splits each has made before.
  int64_t mine[3] = {color < 0 ? kSplitNoColor : color, key, comm.next_child_id()};
  std::vector<int64_t> all(3 * n);
  AllgatherOptions gather;
  gather.input = mine;
  gather.output = all.data();
  gather.count = 3;
  gather.type = DataType::kInt64;
  gather.timeout = timeout;
  SILK_RETURN_IF_ERROR(Allgather(comm, gather));
  if (color < 0) return std::unique_ptr<Communicator>();
  int64_t id = 0;
  std::vector<int> members;
  for (int r = 0; r < n; ++r) {
    id = std::max(id, all[3 * r + 2]);
    if (all[3 * r] == color) members.push_back(r);
  }
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) { return all[3 * a + 1] < all[3 * b + 1]; });
  return comm.CreateChild(members, static_cast<uint32_t>(id), timeout);
}

}  // namespace silk
