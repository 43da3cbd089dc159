// Silk's collectives. Each has one options struct and two entry points: a
// blocking call, and an *Async call that returns a Work handle at once (the
// operation runs on the communicator's engine, in issue order).
//
// Every rank must issue the same collectives in the same order with matching
// arguments (operation, count, type, reduction, root, algorithm). A mismatch
// fails the rank that sees it with a message naming both calls, and that rank
// aborts the communicator, so every other rank fails this call or, if its part
// was already done, its next one; nothing is corrupted and nothing hangs.
// Results are bit-identical on every rank: each element is reduced by one rank
// in one fixed order and then forwarded as bytes.
//
// Buffers need no alignment; count 0 is allowed everywhere. Arguments are
// checked on the calling thread before anything is sent: a bad one returns
// InvalidArgument and leaves the communicator healthy.
//
// `algorithm` (per call) overrides the size-based choice and must name one of
// the operation's algorithms; SILK_ALGO (Config::algorithm) does the same job-
// wide, "ring" for the bandwidth-optimal family, "rhd" or "tree" for the
// latency-optimal one. See collectives/README.md.
//
// `may_overlap` (per call) declares the operation independent of every earlier
// one still running (it touches none of their buffers): the engine may then
// start it before they end (up to SILK_ENGINE_STREAMS at once). Over a WAN,
// consecutive independent operations (gradient buckets) so pay the one-way
// latency about once instead of once each. Issue order, and so matching across
// ranks, is unchanged; completions may come out of order.
#pragma once

#if defined(__cplusplus) && __cplusplus < 202002L
#error "Silk's C++ API needs C++20 (-std=c++20; CMake's Silk::silk asks for it). C code uses <silk/silk.h>."
#endif

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collectives/compression/error_feedback.h"
#include "collectives/compression/quantizer.h"
#include "runtime/communicator.h"
#include "runtime/core/types.h"
#include "runtime/engine/work.h"

namespace silk {

// Every rank ends with the reduction of every rank's `count` elements.
struct AllreduceOptions {
  const void* input = nullptr;  // may equal output (in place)
  void* output = nullptr;
  size_t count = 0;  // elements on every rank
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  absl::Duration timeout = absl::ZeroDuration();  // zero: the communicator's (SILK_TIMEOUT)
  std::string algorithm;                          // "" chooses; "ring" or "rhd"
  bool may_overlap = false;  // independent of earlier operations still running (see above)
  // Reduce among the ranks of this rank's region only (nothing crosses the
  // WAN); every rank of the communicator still makes the call, in order.
  // DiLoCo-style training uses it to keep each region one replica.
  bool within_region = false;
  // Across regions, send each region's partial sums as bf16, int8 or int4
  // (blockwise absmax, algorithms::kWanCompressionGroup = 256 values per
  // float32 scale) instead of float32: S/2, S/4 + S/256 or S/8 + S/256
  // bytes per direction of the WAN instead of S. Only that hop is lossy: the
  // phases inside regions stay exact, each rank quantises its block of its
  // region's sum once, and every rank folds the same decoded values in the
  // same order, so the result is still bit-identical on every rank. Needs
  // float32 and sum or avg (else InvalidArgument); every rank passes the
  // same setting (a mismatch fails like any other). Inside one region, or
  // with within_region, nothing crosses the WAN and the call is exact. The
  // codes and their edge cases (zeros, NaN, Inf): compression/quantizer.h.
  // C API: the same values, none 0, bf16 1, int8 2, int4 3.
  Compression wan_compression = Compression::kNone;
  // With wan_compression: the caller's error-feedback state for this buffer
  // (null: none). What quantisation dropped is added to the next call that
  // passes the same state (compression/error_feedback.h).
  ErrorFeedback* error_feedback = nullptr;
};

absl::Status Allreduce(Communicator& comm, const AllreduceOptions& options);
absl::StatusOr<WorkPtr> AllreduceAsync(Communicator& comm, const AllreduceOptions& options);

// Rank r ends with block r of the reduction: input holds size() blocks of
// `count` elements, output one. In place (as in NCCL): output == input + r * count.
struct ReduceScatterOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;  // elements per rank in the output
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  absl::Duration timeout = absl::ZeroDuration();
  std::string algorithm;  // "" chooses; "ring" or "rhd"
  bool may_overlap = false;  // independent of earlier operations still running (see above)
};

absl::Status ReduceScatter(Communicator& comm, const ReduceScatterOptions& options);
absl::StatusOr<WorkPtr> ReduceScatterAsync(Communicator& comm, const ReduceScatterOptions& options);

// Every rank ends with every rank's `count` elements, in rank order. In place
// (as in NCCL): input == output + r * count.
struct AllgatherOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;  // elements contributed by each rank
  DataType type = DataType::kFloat32;
  absl::Duration timeout = absl::ZeroDuration();
  std::string algorithm;  // "" chooses; "ring" or "rhd"
  bool may_overlap = false;  // independent of earlier operations still running (see above)
};

absl::Status Allgather(Communicator& comm, const AllgatherOptions& options);
absl::StatusOr<WorkPtr> AllgatherAsync(Communicator& comm, const AllgatherOptions& options);

// Allgather with a count per rank: rank r contributes counts[r] elements and
// the output holds them all back to back in rank order. In place: input ==
// output + (counts[0] + ... + counts[r-1]). Every rank passes the same counts.
struct AllgathervOptions {
  const void* input = nullptr;
  void* output = nullptr;
  std::vector<size_t> counts;  // one per rank
  DataType type = DataType::kFloat32;
  absl::Duration timeout = absl::ZeroDuration();
  std::string algorithm;  // "" chooses; "ring" or "rhd"
  bool may_overlap = false;  // independent of earlier operations still running (see above)
};

absl::Status Allgatherv(Communicator& comm, const AllgathervOptions& options);
absl::StatusOr<WorkPtr> AllgathervAsync(Communicator& comm, const AllgathervOptions& options);

// Every rank's output receives the root's input. `input` is read on the root
// only (other ranks may pass null); input == output is in place.
struct BroadcastOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;
  DataType type = DataType::kFloat32;
  int root = 0;
  absl::Duration timeout = absl::ZeroDuration();
  std::string algorithm;  // "" chooses; "ring" (pipelined chain) or "tree" (binomial)
  bool may_overlap = false;  // independent of earlier operations still running (see above)
};

absl::Status Broadcast(Communicator& comm, const BroadcastOptions& options);
absl::StatusOr<WorkPtr> BroadcastAsync(Communicator& comm, const BroadcastOptions& options);

// The root's output receives the reduction of every rank's input. `output` is
// written on the root only (other ranks may pass null); input == output is in place.
struct ReduceOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  int root = 0;
  absl::Duration timeout = absl::ZeroDuration();
  std::string algorithm;  // "" chooses; "ring" (pipelined chain) or "tree" (binomial)
  bool may_overlap = false;  // independent of earlier operations still running (see above)
};

absl::Status Reduce(Communicator& comm, const ReduceOptions& options);
absl::StatusOr<WorkPtr> ReduceAsync(Communicator& comm, const ReduceOptions& options);

// Returns on a rank only once every rank has entered the barrier.
struct BarrierOptions {
  absl::Duration timeout = absl::ZeroDuration();
  std::string algorithm;  // "" or "dissemination"
};

absl::Status Barrier(Communicator& comm, const BarrierOptions& options = {});
absl::StatusOr<WorkPtr> BarrierAsync(Communicator& comm, const BarrierOptions& options = {});

// Block j of rank r's input becomes block r of rank j's output; blocks hold
// `count` elements, input and output size() blocks. input == output is in place.
struct AlltoallOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t count = 0;  // elements per block
  DataType type = DataType::kFloat32;
  absl::Duration timeout = absl::ZeroDuration();
  std::string algorithm;  // "" or "pairwise"
  bool may_overlap = false;  // independent of earlier operations still running (see above)
};

absl::Status Alltoall(Communicator& comm, const AlltoallOptions& options);
absl::StatusOr<WorkPtr> AlltoallAsync(Communicator& comm, const AlltoallOptions& options);

// One payload per region: every rank of a region passes the same `bytes` (a
// region's replicated state, e.g. a DiLoCo replica's compressed
// pseudo-gradient), and every rank's output receives all regions' payloads in
// region order (Communicator region numbering: by lowest rank), num_regions()
// * bytes in all. Each byte crosses to each other region once, the sending
// shared by the region's ranks. Which rank's copy crosses is unspecified: the
// ranks of a region must really agree. In place: input == output + region * bytes.
struct RegionAllgatherOptions {
  const void* input = nullptr;
  void* output = nullptr;
  size_t bytes = 0;
  absl::Duration timeout = absl::ZeroDuration();
  bool may_overlap = false;  // independent of earlier operations still running (see above)
};

absl::Status RegionAllgather(Communicator& comm, const RegionAllgatherOptions& options);
absl::StatusOr<WorkPtr> RegionAllgatherAsync(Communicator& comm, const RegionAllgatherOptions& options);

// For a binding that refuses a call before it reaches Silk (a bad tensor, an
// unsupported option): the refused call still takes its place in the
// communicator's sequence of calls, and every peer hears of it, so a peer
// whose matching call was accepted fails with a mismatch naming it instead of
// pairing with this rank's next call; ranks that all refused the same call
// stay healthy. Every collective above does this itself for the arguments it
// checks. Returns `why`.
absl::Status Reject(Communicator& comm, CollectiveKind kind, const absl::Status& why);

}  // namespace silk
