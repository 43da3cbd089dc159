// Chunked, pipelined ring algorithms: the bandwidth-optimal family. Each rank
// sends only to its right neighbour and receives only from its left; a block
// is cut into chunks so that forwarding chunk c overlaps receiving chunk c+1.
//
// Reduce-scatter: block j starts at rank j+1 and travels once around the ring,
// each rank adding its own contribution, until rank j adds the last one. So
// every element is reduced in one fixed order by one rank and afterwards only
// copied as bytes: all-reduce = reduce-scatter + all-gather is bit-identical
// on every rank. Each rank sends (n-1)/n of the buffer per phase.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "collectives/algorithms/partition.h"
#include "collectives/algorithms/workspace.h"
#include "runtime/core/types.h"
#include "runtime/engine/engine.h"

namespace silk::algorithms {

// On return `out_block` (blocks[rank].count elements; it may be exactly this
// rank's block of `input`) holds block `rank` reduced over every rank, already
// divided by the rank count for kAvg. `input` is not modified otherwise.
absl::Status RingReduceScatter(OpContext& ctx, Workspace& workspace, const void* input, const Blocks& blocks,
                               void* out_block, DataType type, ReduceOp op, size_t chunk_bytes, uint32_t first_seq);

// Block `rank` of `buffer` holds this rank's data; on return every block does.
absl::Status RingAllgather(OpContext& ctx, void* buffer, const Blocks& blocks, size_t element_size, size_t chunk_bytes,
                           uint32_t first_seq);

// Reduce-scatter over balanced segments, then all-gather. `input` may equal `output`.
absl::Status RingAllreduce(OpContext& ctx, Workspace& workspace, const void* input, void* output, size_t count,
                           DataType type, ReduceOp op, size_t chunk_bytes);

}  // namespace silk::algorithms
