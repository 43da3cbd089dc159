#include "collectives/algorithms/ring.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "collectives/kernels/reduce.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {

// The all-gather half of an all-reduce numbers its messages from here, clear of the reduce-scatter's.
constexpr uint32_t kGatherSeq = 1u << 30;

using Requests = std::vector<transport::RequestPtr>;

absl::Status WaitAllNonNull(OpContext& ctx, const std::vector<Requests>& grid) {
  Requests all;
  for (const Requests& row : grid) {
    for (const auto& r : row) {
      if (r) all.push_back(r);
    }
  }
  return ctx.WaitAll(all);
}

}  // namespace

absl::Status RingReduceScatter(OpContext& ctx, Workspace& workspace, const void* input, const Blocks& blocks,
                               void* out_block, DataType type, ReduceOp op, size_t chunk_bytes, uint32_t first_seq) {
  const int n = ctx.size(), rank = ctx.rank();
  const size_t elem = DataTypeSize(type);
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(out_block);
  const Range mine = blocks[rank];
  if (n == 1) {  // avg over one rank is the identity
    if (mine.count > 0 && out != in + mine.begin * elem) std::memcpy(out, in + mine.begin * elem, mine.count * elem);
    return absl::OkStatus();
  }
  const size_t largest = LargestBlock(blocks);
  const size_t chunk = ChunkElements(chunk_bytes, elem, largest);
  const size_t chunks = ChunksFor(largest, chunk);
  if (chunks == 0) return absl::OkStatus();

  const int right = (rank + 1) % n, left = (rank + n - 1) % n;
  const int steps = n - 1;
  // Step s sends block (rank - s - 1) and receives block (rank - s - 2); the last step receives block `rank`.
  auto block = [&](int s) -> const Range& { return blocks[((rank - s) % n + n) % n]; };
  auto seq = [&](int s, size_t c) { return first_seq + static_cast<uint32_t>(s * chunks + c); };
  // Received partials land in stage[s % 2]; the partial this rank forwards at
  // step s + 1 is built in forward[s % 2]. Two of each let step s + 1 run while
  // step s's messages are still on the wire.
  char* stage[2] = {nullptr, nullptr};
  char* forward[2] = {nullptr, nullptr};
  for (int i = 0; i < std::min(2, steps); ++i) stage[i] = workspace.Allocate(largest * elem);
  for (int i = 0; i < std::min(2, steps - 1); ++i) forward[i] = workspace.Allocate(largest * elem);
  std::vector<Requests> recvs(steps, Requests(chunks)), sends(steps, Requests(chunks));
  // The send still reading each chunk of forward[i]. Not simply step s - 1's:
  // a step whose block is empty (fewer elements than ranks) sends nothing, and
  // then the last send from forward[s % 2] is older.
  Requests reading[2] = {Requests(chunks), Requests(chunks)};

  auto post_recv = [&](int s) {
    const Range& b = block(s + 2);
    for (size_t c = 0; c < chunks; ++c) {
      Range piece = Chunk(b, chunk, c);
      if (piece.count == 0) continue;
      recvs[s][c] = ctx.Recv(left, seq(s, c), stage[s % 2] + (piece.begin - b.begin) * elem, piece.count * elem);
    }
  };
  auto post_send = [&](int s, size_t c) {
    const Range& b = block(s + 1);
    Range piece = Chunk(b, chunk, c);
    if (piece.count == 0) return;
    const char* data = s == 0 ? in + piece.begin * elem : forward[(s - 1) % 2] + (piece.begin - b.begin) * elem;
    sends[s][c] = ctx.Send(right, seq(s, c), data, piece.count * elem);
    if (s > 0) reading[(s - 1) % 2][c] = sends[s][c];
  };

  for (int s = 0; s < std::min(2, steps); ++s) post_recv(s);
  for (size_t c = 0; c < chunks; ++c) post_send(0, c);
  for (int s = 0; s < steps; ++s) {
    const Range& b = block(s + 2);
    const bool last = s == steps - 1;
    for (size_t c = 0; c < chunks; ++c) {
      Range piece = Chunk(b, chunk, c);
      if (piece.count == 0) continue;
      SILK_RETURN_IF_ERROR(ctx.Wait(recvs[s][c]));
      const size_t offset = (piece.begin - b.begin) * elem;
      const char* theirs = stage[s % 2] + offset;
      const char* ours = in + piece.begin * elem;
      if (last) {
        kernels::Reduce(type, op, out + offset, ours, theirs, piece.count);
        if (op == ReduceOp::kAvg) kernels::Scale(type, out + offset, piece.count, n);
        continue;
      }
      // The last send from forward[s % 2] must be out before it is overwritten.
      if (reading[s % 2][c]) SILK_RETURN_IF_ERROR(ctx.Wait(reading[s % 2][c]));
      kernels::Reduce(type, op, forward[s % 2] + offset, ours, theirs, piece.count);
      post_send(s + 1, c);
    }
    if (s + 2 < steps) post_recv(s + 2);
  }
  SILK_RETURN_IF_ERROR(WaitAllNonNull(ctx, sends));
  // Every message is in and out: the staging may serve this operation's next phase.
  for (char* buffer : {stage[0], stage[1], forward[0], forward[1]}) {
    if (buffer != nullptr) workspace.Release(buffer);
  }
  return absl::OkStatus();
}

absl::Status RingAllgather(OpContext& ctx, void* buffer, const Blocks& blocks, size_t element_size, size_t chunk_bytes,
                           uint32_t first_seq) {
  const int n = ctx.size(), rank = ctx.rank();
  if (n == 1) return absl::OkStatus();
  const size_t elem = element_size;
  char* data = static_cast<char*>(buffer);
  const size_t chunk = ChunkElements(chunk_bytes, elem, LargestBlock(blocks));
  const size_t chunks = ChunksFor(LargestBlock(blocks), chunk);
  if (chunks == 0) return absl::OkStatus();

  const int right = (rank + 1) % n, left = (rank + n - 1) % n;
  const int steps = n - 1;
  // Step t forwards block (rank - t) and receives block (rank - t - 1) straight into place.
  auto block = [&](int t) -> const Range& { return blocks[((rank - t) % n + n) % n]; };
  auto seq = [&](int t, size_t c) { return first_seq + static_cast<uint32_t>(t * chunks + c); };
  std::vector<Requests> recvs(steps, Requests(chunks)), sends(steps, Requests(chunks));
  for (int t = 0; t < steps; ++t) {
    for (size_t c = 0; c < chunks; ++c) {
      Range piece = Chunk(block(t + 1), chunk, c);
      if (piece.count > 0) recvs[t][c] = ctx.Recv(left, seq(t, c), data + piece.begin * elem, piece.count * elem);
    }
  }
  auto forward = [&](int t, size_t c) {
    Range piece = Chunk(block(t), chunk, c);
    if (piece.count > 0) sends[t][c] = ctx.Send(right, seq(t, c), data + piece.begin * elem, piece.count * elem);
  };
  for (size_t c = 0; c < chunks; ++c) forward(0, c);
  for (int t = 0; t < steps; ++t) {
    for (size_t c = 0; c < chunks; ++c) {
      if (!recvs[t][c]) continue;
      SILK_RETURN_IF_ERROR(ctx.Wait(recvs[t][c]));
      if (t + 1 < steps) forward(t + 1, c);
    }
  }
  return WaitAllNonNull(ctx, sends);
}

absl::Status RingAllreduce(OpContext& ctx, Workspace& workspace, const void* input, void* output, size_t count,
                           DataType type, ReduceOp op, size_t chunk_bytes) {
  const size_t elem = DataTypeSize(type);
  const Blocks blocks = BalancedBlocks(count, ctx.size());
  char* out = static_cast<char*>(output);
  // Reduce-scatter waits for its sends, so in place the all-gather may overwrite what they read.
  SILK_RETURN_IF_ERROR(RingReduceScatter(ctx, workspace, input, blocks, out + blocks[ctx.rank()].begin * elem, type, op,
                                         chunk_bytes, 0));
  return RingAllgather(ctx, output, blocks, elem, chunk_bytes, kGatherSeq);
}

}  // namespace silk::algorithms
