#include "collectives/algorithms/shared_slots.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/kernels/reduce.h"
#include "runtime/core/error.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {

// Each rank's bytes: in the peers' slots, and this rank's own.
using Sources = absl::InlinedVector<const char*, 16>;

const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

// How often a node phase's wait looks again at the links (as transport::Await).
constexpr absl::Duration kLinkRecheck = absl::Seconds(1);

// A node phase's wait in a slot, `attempt(limit)` (safe to repeat: a wait
// that times out has changed nothing), bounded as the operation's waits on
// the transport are (transport::Await): past the deadline while a WAN link
// is down, since a node partner may wait that long for its partials.
template <typename Attempt>
auto WithinOperationLimit(OpContext& ctx, Attempt attempt) -> decltype(attempt(absl::Time())) {
  const transport::Transport& links = ctx.transport();
  while (true) {
    const absl::Time limit = links.StretchDeadline(ctx.started(), ctx.deadline());
    auto result = attempt(std::min(limit, absl::Now() + kLinkRecheck));
    const absl::Status status = StatusOf(result);
    if (!absl::IsDeadlineExceeded(status)) return result;
    if (absl::Now() < links.StretchDeadline(ctx.started(), ctx.deadline())) continue;
    absl::Status outage = links.OutageError();
    if (outage.ok()) return result;
    return PeerLostError(absl::StrFormat("%s; %s", outage.message(), status.message()));
  }
}

// Waits for every peer's publication of `step`: `from[p]` is peer p's bytes
// (`expected(p)` of them), valid until Release. `stretched`: a node phase's
// wait (WithinOperationLimit); otherwise bounded by the deadline alone.
template <typename Expected>
absl::Status AwaitAll(OpContext& ctx, transport::SharedSlots& slots, int step, Expected expected, Sources* from,
                      bool stretched = false) {
  const int n = ctx.size(), rank = ctx.rank();
  from->assign(n, nullptr);
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    auto await = [&](absl::Time limit) {
      return slots.Await(peer, ctx.op_id(), step, ctx.descriptor(), expected(peer), limit);
    };
    SILK_ASSIGN_OR_RETURN((*from)[peer], stretched ? WithinOperationLimit(ctx, await) : await(ctx.deadline()));
  }
  return absl::OkStatus();
}

// Publishes this rank's part, then waits for every peer's: `from[p]` is
// peer p's bytes (`expected(p)` of them), valid until Release.
template <typename Expected>
absl::Status Exchange(OpContext& ctx, transport::SharedSlots& slots, const void* mine, size_t my_bytes,
                      Expected expected, Sources* from) {
  SILK_RETURN_IF_ERROR(slots.Publish(ctx.op_id(), 0, ctx.descriptor(), mine, my_bytes, ctx.deadline()));
  return AwaitAll(ctx, slots, 0, expected, from);
}

// Combines `from[0..n)` (count values each) into `output` in rank order, 0
// first, so every rank that does it gets the same bits. `output` may be one
// of them (in place): a later one than from[1] would be overwritten before
// its turn, so it is read from a copy.
void CombineInRankOrder(const Sources& from, void* output, size_t count, DataType type, ReduceOp op) {
  if (count == 0) return;
  const int n = static_cast<int>(from.size());
  const size_t bytes = count * DataTypeSize(type);
  std::vector<char> aliased;
  for (int r = 2; r < n; ++r) {
    if (from[r] == output) aliased.assign(from[r], from[r] + bytes);
  }
  kernels::Reduce(type, op, output, from[0], from[1], count);
  for (int r = 2; r < n; ++r) kernels::ReduceInto(type, op, output, from[r] == output ? aliased.data() : from[r], count);
  if (op == ReduceOp::kAvg) kernels::Scale(type, output, count, n);
}

// One step: every rank reads every peer's whole input and combines them all.
absl::Status AllreduceOneStep(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                              size_t count, DataType type, ReduceOp op) {
  const size_t bytes = count * DataTypeSize(type);
  const int rank = ctx.rank();
  Sources from;
  SILK_RETURN_IF_ERROR(Exchange(ctx, slots, input, bytes, [bytes](int) { return bytes; }, &from));
  from[rank] = static_cast<const char*>(input);
  CombineInRankOrder(from, output, count, type, op);
  slots.Release(ctx.op_id(), 0);
  return absl::OkStatus();
}

// The one rule for both the fit and the algorithm: every rank applies it to the same call.
bool TakesTwoSteps(size_t count, DataType type) { return count * DataTypeSize(type) >= kSlotsTwoStepBytes; }

// Rank r's share of `count` values: [first, first + count).
struct Share {
  size_t first, count;
};
Share ShareOf(int r, int n, size_t count) {
  const size_t base = count / n, extra = count % n;
  const size_t first = r * base + std::min<size_t>(r, extra);
  return {first, base + (static_cast<size_t>(r) < extra ? 1 : 0)};
}

// A two-step all-reduce larger than n slots goes chunk by chunk, each chunk
// as large as n shares that each fill a slot. Chunk c takes steps 2c and 2c+1.
struct Chunking {
  size_t values_per_chunk, chunks;
};
Chunking ChunkingOf(size_t capacity, size_t count, DataType type, int n) {
  const size_t per_chunk = std::max<size_t>(1, capacity / DataTypeSize(type)) * n;
  return {per_chunk, count == 0 ? 1 : (count + per_chunk - 1) / per_chunk};
}

// One chunk of the two steps: each rank sends each peer that peer's share of
// its input, combines its own share from every rank's (in rank order, so the
// bits are those of one step), then publishes the combined share to every
// peer and copies theirs in. Each rank moves about 3S bytes instead of
// 2(n-1)S, and the combining is split n ways.
absl::Status AllreduceChunk(OpContext& ctx, transport::SharedSlots& slots, const char* in, char* out, size_t count,
                            DataType type, ReduceOp op, int first_step) {
  const size_t size = DataTypeSize(type);
  const int n = ctx.size(), rank = ctx.rank();
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    const Share share = ShareOf(peer, n, count);
    SILK_RETURN_IF_ERROR(slots.PublishTo(peer, ctx.op_id(), first_step, ctx.descriptor(), in + share.first * size,
                                         share.count * size, ctx.deadline()));
  }
  const Share mine = ShareOf(rank, n, count);
  Sources from;
  SILK_RETURN_IF_ERROR(AwaitAll(ctx, slots, first_step, [&](int) { return mine.count * size; }, &from));
  from[rank] = in + mine.first * size;
  char* combined = out + mine.first * size;
  CombineInRankOrder(from, combined, mine.count, type, op);
  slots.Release(ctx.op_id(), first_step);

  const int gather = first_step + 1;
  SILK_RETURN_IF_ERROR(slots.Publish(ctx.op_id(), gather, ctx.descriptor(), combined, mine.count * size, ctx.deadline()));
  SILK_RETURN_IF_ERROR(
      AwaitAll(ctx, slots, gather, [&](int peer) { return ShareOf(peer, n, count).count * size; }, &from));
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    const Share share = ShareOf(peer, n, count);
    if (share.count > 0) std::memcpy(out + share.first * size, from[peer], share.count * size);
  }
  slots.Release(ctx.op_id(), gather);
  return absl::OkStatus();
}

absl::Status AllreduceTwoSteps(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                               size_t count, DataType type, ReduceOp op) {
  const size_t size = DataTypeSize(type);
  const Chunking chunking = ChunkingOf(slots.capacity(), count, type, ctx.size());
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  for (size_t c = 0; c < chunking.chunks; ++c) {
    const size_t first = c * chunking.values_per_chunk;
    const size_t values = std::min(chunking.values_per_chunk, count - first);
    SILK_RETURN_IF_ERROR(AllreduceChunk(ctx, slots, in + first * size, out + first * size, values, type, op,
                                        static_cast<int>(2 * c)));
  }
  return absl::OkStatus();
}

// One block per rank, cut into chunks of at most a slot: chunk c of every
// block goes in step c. A block of 0 bytes still takes one step (the
// descriptors must meet).
struct BlockChunks {
  size_t block_bytes, chunk_bytes, chunks;
  size_t offset(size_t c) const { return c * chunk_bytes; }
  size_t bytes(size_t c) const { return std::min(chunk_bytes, block_bytes - offset(c)); }
};
BlockChunks BlockChunksOf(size_t capacity, size_t block_bytes, size_t align) {
  const size_t chunk = std::max(align, capacity / align * align);
  return {block_bytes, chunk, block_bytes == 0 ? 1 : (block_bytes + chunk - 1) / chunk};
}

// Publishes to each peer p the chunk at `offset` of block p of `buffer`, then
// waits for every peer's chunk of `bytes`.
absl::Status ExchangeBlocks(OpContext& ctx, transport::SharedSlots& slots, int step, const char* buffer,
                            size_t block_bytes, size_t offset, size_t bytes, Sources* from) {
  for (int peer = 0; peer < ctx.size(); ++peer) {
    if (peer == ctx.rank()) continue;
    SILK_RETURN_IF_ERROR(slots.PublishTo(peer, ctx.op_id(), step, ctx.descriptor(),
                                         buffer + peer * block_bytes + offset, bytes, ctx.deadline()));
  }
  return AwaitAll(ctx, slots, step, [bytes](int) { return bytes; }, from);
}

}  // namespace

bool SlotsBlocksFit(const transport::SharedSlots& slots, size_t block_bytes, int ranks) {
  if (ranks < 1 || block_bytes > kSlotsLargestBytes / ranks) return false;
  return BlockChunksOf(slots.capacity(), block_bytes, 1).chunks <= transport::SharedSlots::kMaxSteps;
}

absl::Status SlotsAllgather(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t block_bytes) {
  const int n = ctx.size(), rank = ctx.rank();
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  if (block_bytes > 0 && out + rank * block_bytes != in) std::memcpy(out + rank * block_bytes, in, block_bytes);
  const BlockChunks chunks = BlockChunksOf(slots.capacity(), block_bytes, 1);
  Sources from;
  for (size_t c = 0; c < chunks.chunks; ++c) {
    const int step = static_cast<int>(c);
    const size_t offset = chunks.offset(c), bytes = chunks.bytes(c);
    SILK_RETURN_IF_ERROR(slots.Publish(ctx.op_id(), step, ctx.descriptor(), in + offset, bytes, ctx.deadline()));
    SILK_RETURN_IF_ERROR(AwaitAll(ctx, slots, step, [bytes](int) { return bytes; }, &from));
    for (int peer = 0; peer < n; ++peer) {
      if (peer != rank && bytes > 0) std::memcpy(out + peer * block_bytes + offset, from[peer], bytes);
    }
    slots.Release(ctx.op_id(), step);
  }
  return absl::OkStatus();
}

absl::Status SlotsReduceScatter(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                                size_t count, DataType type, ReduceOp op) {
  const int rank = ctx.rank();
  const size_t size = DataTypeSize(type), block_bytes = count * size;
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  const BlockChunks chunks = BlockChunksOf(slots.capacity(), block_bytes, size);
  Sources from;
  for (size_t c = 0; c < chunks.chunks; ++c) {
    const int step = static_cast<int>(c);
    const size_t offset = chunks.offset(c), bytes = chunks.bytes(c);
    SILK_RETURN_IF_ERROR(ExchangeBlocks(ctx, slots, step, in, block_bytes, offset, bytes, &from));
    from[rank] = in + rank * block_bytes + offset;
    CombineInRankOrder(from, out + offset, bytes / size, type, op);
    slots.Release(ctx.op_id(), step);
  }
  return absl::OkStatus();
}

absl::Status SlotsReduce(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                         size_t count, DataType type, ReduceOp op, int root) {
  const int n = ctx.size(), rank = ctx.rank();
  const bool is_root = rank == root;
  const size_t size = DataTypeSize(type);
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  const BlockChunks chunks = BlockChunksOf(slots.capacity(), count * size, size);
  Sources from;
  for (size_t c = 0; c < chunks.chunks; ++c) {
    const int step = static_cast<int>(c);
    const size_t offset = chunks.offset(c), bytes = chunks.bytes(c);
    for (int peer = 0; peer < n; ++peer) {
      if (peer == rank) continue;
      const bool to_root = peer == root;
      SILK_RETURN_IF_ERROR(slots.PublishTo(peer, ctx.op_id(), step, ctx.descriptor(), to_root ? in + offset : nullptr,
                                           to_root ? bytes : 0, ctx.deadline()));
    }
    SILK_RETURN_IF_ERROR(AwaitAll(ctx, slots, step, [&](int) { return is_root ? bytes : size_t{0}; }, &from));
    if (is_root) {
      from[rank] = in + offset;
      CombineInRankOrder(from, out + offset, bytes / size, type, op);
    }
    slots.Release(ctx.op_id(), step);
  }
  return absl::OkStatus();
}

absl::Status SlotsAlltoall(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                           size_t block_bytes) {
  const int n = ctx.size(), rank = ctx.rank();
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  if (block_bytes > 0 && in != out) std::memcpy(out + rank * block_bytes, in + rank * block_bytes, block_bytes);
  const BlockChunks chunks = BlockChunksOf(slots.capacity(), block_bytes, 1);
  Sources from;
  for (size_t c = 0; c < chunks.chunks; ++c) {
    const int step = static_cast<int>(c);
    const size_t offset = chunks.offset(c), bytes = chunks.bytes(c);
    // Each peer's chunk is copied into its lane before any of `out` is
    // written, so in place the chunks still to send are intact.
    SILK_RETURN_IF_ERROR(ExchangeBlocks(ctx, slots, step, in, block_bytes, offset, bytes, &from));
    for (int peer = 0; peer < n; ++peer) {
      if (peer != rank && bytes > 0) std::memcpy(out + peer * block_bytes + offset, from[peer], bytes);
    }
    slots.Release(ctx.op_id(), step);
  }
  return absl::OkStatus();
}

bool SlotsAllreduceFits(const transport::SharedSlots& slots, size_t count, DataType type, int ranks) {
  if (!TakesTwoSteps(count, type)) return count * DataTypeSize(type) <= slots.capacity();
  if (count > kSlotsLargestBytes / DataTypeSize(type)) return false;
  return 2 * ChunkingOf(slots.capacity(), count, type, ranks).chunks <= transport::SharedSlots::kMaxSteps;
}

absl::Status SlotsAllreduce(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t count, DataType type, ReduceOp op) {
  if (!TakesTwoSteps(count, type)) return AllreduceOneStep(ctx, slots, input, output, count, type, op);
  return AllreduceTwoSteps(ctx, slots, input, output, count, type, op);
}

absl::Status SlotsBroadcast(OpContext& ctx, transport::SharedSlots& slots, const void* input, void* output,
                            size_t bytes, int root) {
  const bool is_root = ctx.rank() == root;
  Sources from;
  SILK_RETURN_IF_ERROR(Exchange(ctx, slots, is_root ? input : nullptr, is_root ? bytes : 0,
                                [&](int peer) { return peer == root ? bytes : 0; }, &from));
  const char* source = is_root ? static_cast<const char*>(input) : from[root];
  if (bytes > 0 && output != source) std::memcpy(output, source, bytes);
  slots.Release(ctx.op_id(), 0);
  return absl::OkStatus();
}

std::optional<transport::SlotsSubset> SlotsAmong(transport::Transport& transport, const std::vector<int>& members,
                                                 const Blocks& largest, size_t element_size, size_t steps) {
  transport::SharedSlots* node = transport.node_slots();
  if (node == nullptr || members.size() < 2 || steps > transport::SharedSlots::kMaxSteps) return std::nullopt;
  std::optional<transport::SlotsSubset> slots(std::in_place, *node, members);
  for (int peer = 0; peer < slots->size(); ++peer) {
    if (!slots->reaches(peer)) return std::nullopt;
  }
  for (const Range& block : largest) {
    if (block.count > slots->capacity() / element_size) return std::nullopt;
  }
  return slots;
}

// A node phase's publication to `peer` (see WithinOperationLimit).
absl::Status PublishToWithin(OpContext& ctx, transport::SharedSlots& slots, int peer, int step, const void* data,
                             size_t bytes) {
  return WithinOperationLimit(ctx, [&](absl::Time limit) {
    return slots.PublishTo(peer, ctx.op_id(), step, ctx.descriptor(), data, bytes, limit);
  });
}
absl::Status SlotsReduceScatterStep(OpContext& ctx, transport::SharedSlots& slots, int step, const void* input,
                                    const Blocks& blocks, void* output, DataType type, ReduceOp op) {
  const int n = ctx.size(), rank = ctx.rank();
  const size_t size = DataTypeSize(type);
  const char* in = static_cast<const char*>(input);
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    SILK_RETURN_IF_ERROR(
        PublishToWithin(ctx, slots, peer, step, in + blocks[peer].begin * size, blocks[peer].count * size));
  }
  const Range mine = blocks[rank];
  Sources from;
  SILK_RETURN_IF_ERROR(AwaitAll(ctx, slots, step, [&](int) { return mine.count * size; }, &from, /*stretched=*/true));
  from[rank] = in + mine.begin * size;
  CombineInRankOrder(from, output, mine.count, type, op);
  slots.Release(ctx.op_id(), step);
  return absl::OkStatus();
}

absl::Status SlotsAllgatherStep(OpContext& ctx, transport::SharedSlots& slots, int step, void* data,
                                const Blocks& blocks, size_t element_size) {
  const int n = ctx.size(), rank = ctx.rank();
  char* base = static_cast<char*>(data);
  const Range mine = blocks[rank];
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    SILK_RETURN_IF_ERROR(
        PublishToWithin(ctx, slots, peer, step, base + mine.begin * element_size, mine.count * element_size));
  }
  Sources from;
  SILK_RETURN_IF_ERROR(AwaitAll(
      ctx, slots, step, [&](int peer) { return blocks[peer].count * element_size; }, &from, /*stretched=*/true));
  for (int peer = 0; peer < n; ++peer) {
    if (peer != rank && blocks[peer].count > 0) {
      std::memcpy(base + blocks[peer].begin * element_size, from[peer], blocks[peer].count * element_size);
    }
  }
  slots.Release(ctx.op_id(), step);
  return absl::OkStatus();
}

absl::Status SlotsBarrier(OpContext& ctx, transport::SharedSlots& slots) {
  Sources from;
  SILK_RETURN_IF_ERROR(Exchange(ctx, slots, nullptr, 0, [](int) { return size_t{0}; }, &from));
  slots.Release(ctx.op_id(), 0);
  return absl::OkStatus();
}

}  // namespace silk::algorithms
