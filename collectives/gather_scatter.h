// Rooted gather and scatter, and all-to-all with a count per pair (MPI's
// Gather, Scatter, Alltoallv; PyTorch's gather, scatter and all_to_all_single
// with unequal splits, as mixture-of-experts layers use). Same rules as
// collectives.h: every rank makes the same calls in the same order, an
// options struct and a blocking and an *Async entry point each, arguments
// checked before anything is sent, mismatches fail every rank.
//
// Each moves every block directly between its two ranks (one message per
// pair, all posted at once): nothing is reduced, so results are the bytes
// sent, and across regions each block crosses the WAN once.
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/communicator.h"
#include "runtime/core/types.h"
#include "runtime/engine/work.h"

namespace silk {

// The root's output receives every rank's `count` elements in rank order
// (size() * count); `output` is written on the root only. In place (root):
// input == output + root * count.
struct GatherOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;  // elements from each rank
  DataType type = DataType::kFloat32;
  int root = 0;
  absl::Duration timeout = absl::ZeroDuration();
};

absl::Status Gather(Communicator& comm, const GatherOptions& options);
absl::StatusOr<WorkPtr> GatherAsync(Communicator& comm, const GatherOptions& options);

// Rank r's output receives block r (`count` elements) of the root's input
// (size() * count, read on the root only). In place (root): output == input + root * count.
struct ScatterOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;  // elements to each rank
  DataType type = DataType::kFloat32;
  int root = 0;
  absl::Duration timeout = absl::ZeroDuration();
};

absl::Status Scatter(Communicator& comm, const ScatterOptions& options);
absl::StatusOr<WorkPtr> ScatterAsync(Communicator& comm, const ScatterOptions& options);

// Rank r sends send_counts[j] elements (from send_offsets[j]) to rank j, and
// receives recv_counts[j] elements (at recv_offsets[j]) from rank j; rank j's
// send_counts[r] must equal rank r's recv_counts[j] (else both fail with a
// mismatch naming the sizes). Offsets are in elements; empty offsets mean
// back to back in rank order. Not in place: input and output must not overlap.
struct AlltoallvOptions {
  const void* input = nullptr;
  void* output = nullptr;
  std::vector<size_t> send_counts, send_offsets;  // size() each (offsets may be empty)
  std::vector<size_t> recv_counts, recv_offsets;
  DataType type = DataType::kFloat32;
  absl::Duration timeout = absl::ZeroDuration();
};

absl::Status Alltoallv(Communicator& comm, const AlltoallvOptions& options);
absl::StatusOr<WorkPtr> AlltoallvAsync(Communicator& comm, const AlltoallvOptions& options);

}  // namespace silk
