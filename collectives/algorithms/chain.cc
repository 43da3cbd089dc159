#include "collectives/algorithms/chain.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "collectives/algorithms/partition.h"
#include "collectives/kernels/reduce.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {

absl::Status ChainBroadcast(OpContext& ctx, const void* input, void* output, size_t bytes, int root,
                            size_t chunk_bytes) {
  const int n = ctx.size(), rank = ctx.rank();
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  const int position = (rank - root + n) % n;
  if (position == 0 && bytes > 0 && in != out) std::memcpy(out, in, bytes);
  if (n == 1 || bytes == 0) return absl::OkStatus();
  const int prev = position > 0 ? (rank + n - 1) % n : -1;
  const int next = position + 1 < n ? (rank + 1) % n : -1;
  const size_t chunk = ChunkElements(chunk_bytes, 1, bytes);
  const size_t chunks = ChunksFor(bytes, chunk);
  const Range whole{0, bytes};
  std::vector<transport::RequestPtr> recvs(chunks), sends;
  if (prev >= 0) {
    for (size_t c = 0; c < chunks; ++c) {
      Range piece = Chunk(whole, chunk, c);
      recvs[c] = ctx.Recv(prev, static_cast<uint32_t>(c), out + piece.begin, piece.count);
    }
  }
  const char* source = position == 0 ? in : out;
  for (size_t c = 0; c < chunks; ++c) {
    Range piece = Chunk(whole, chunk, c);
    if (prev >= 0) SILK_RETURN_IF_ERROR(ctx.Wait(recvs[c]));
    if (next >= 0) sends.push_back(ctx.Send(next, static_cast<uint32_t>(c), source + piece.begin, piece.count));
  }
  return ctx.WaitAll(sends);
}

absl::Status ChainReduce(OpContext& ctx, Workspace& workspace, const void* input, void* output, size_t count,
                         DataType type, ReduceOp op, int root, size_t chunk_bytes) {
  const int n = ctx.size(), rank = ctx.rank();
  const size_t elem = DataTypeSize(type);
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  if (n == 1 || count == 0) {
    if (count > 0 && in != out) std::memcpy(out, in, count * elem);
    return absl::OkStatus();
  }
  const int position = (rank - root - 1 + 2 * n) % n;  // the root is last
  const int prev = position > 0 ? (rank + n - 1) % n : -1;
  const int next = position + 1 < n ? (rank + 1) % n : -1;
  const size_t chunk = ChunkElements(chunk_bytes, elem, count);
  const size_t chunks = ChunksFor(count, chunk);
  const Range whole{0, count};
  char* partial = prev >= 0 ? workspace.Allocate(count * elem) : nullptr;
  std::vector<transport::RequestPtr> recvs(chunks), sends;
  if (prev >= 0) {
    for (size_t c = 0; c < chunks; ++c) {
      Range piece = Chunk(whole, chunk, c);
      recvs[c] = ctx.Recv(prev, static_cast<uint32_t>(c), partial + piece.begin * elem, piece.count * elem);
    }
  }
  for (size_t c = 0; c < chunks; ++c) {
    Range piece = Chunk(whole, chunk, c);
    const size_t offset = piece.begin * elem, length = piece.count * elem;
    if (prev < 0) {  // the head of the chain sends its input as it is
      sends.push_back(ctx.Send(next, static_cast<uint32_t>(c), in + offset, length));
      continue;
    }
    SILK_RETURN_IF_ERROR(ctx.Wait(recvs[c]));
    if (next >= 0) {
      kernels::Reduce(type, op, partial + offset, in + offset, partial + offset, piece.count);
      sends.push_back(ctx.Send(next, static_cast<uint32_t>(c), partial + offset, length));
    } else {
      kernels::Reduce(type, op, out + offset, in + offset, partial + offset, piece.count);
      if (op == ReduceOp::kAvg) kernels::Scale(type, out + offset, piece.count, n);
    }
  }
  return ctx.WaitAll(sends);
}

}  // namespace silk::algorithms
