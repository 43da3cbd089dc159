#include "collectives/algorithms/halving_doubling.h"

#include <bit>
#include <cstring>
#include <vector>

#include "collectives/kernels/reduce.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {

// Message numbers: the fold, then one per halving or doubling step (at most 32 each), then the unfold.
constexpr uint32_t kFoldInSeq = 0;
constexpr uint32_t kHalvingSeq = 1;
constexpr uint32_t kDoublingSeq = 40;
constexpr uint32_t kFoldOutSeq = 80;

// How this rank takes part once n is folded onto a power of two p.
struct Fold {
  int p = 1;
  int extra = 0;     // n - p: the number of pairs that fold
  int vrank = -1;    // this rank's virtual rank; -1 while it sits out
  int partner = -1;  // the rank it folds with; -1 if none

  Fold(int n, int rank) : p(static_cast<int>(std::bit_floor(static_cast<unsigned>(n)))), extra(n - p) {
    if (rank < 2 * extra) {
      vrank = rank % 2 == 1 ? rank / 2 : -1;
      partner = rank ^ 1;
    } else {
      vrank = rank - extra;
    }
  }
  int RealRank(int v) const { return v < extra ? 2 * v + 1 : v + extra; }
  // The blocks virtual rank v stands for: its own, and its folded partner's first.
  Range Group(const Blocks& blocks, int v) const {
    return v < extra ? Cover(blocks, 2 * v, 2 * v + 2) : Cover(blocks, v + extra, v + extra + 1);
  }
  Blocks Groups(const Blocks& blocks) const {
    Blocks groups(p);
    for (int v = 0; v < p; ++v) groups[v] = Group(blocks, v);
    return groups;
  }
};

absl::Status SendAndWait(OpContext& ctx, int peer, uint32_t seq, const char* data, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return ctx.Wait(ctx.Send(peer, seq, data, bytes));
}

absl::Status RecvAndWait(OpContext& ctx, int peer, uint32_t seq, char* data, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  return ctx.Wait(ctx.Recv(peer, seq, data, bytes));
}

// Recursive halving among the p virtual ranks. `src` is this rank's
// contribution (it may be `acc`); on return group vrank of `acc` holds the
// reduction over every rank. `acc` outside the kept ranges is not written.
absl::Status Halve(OpContext& ctx, Workspace& workspace, const Fold& fold, const Blocks& groups, const char* src,
                   char* acc, DataType type, ReduceOp op) {
  const size_t elem = DataTypeSize(type);
  const int v = fold.vrank;
  std::vector<transport::RequestPtr> sends;
  int lo = 0, hi = fold.p;
  uint32_t seq = kHalvingSeq;
  for (int d = fold.p / 2; d >= 1; d /= 2, ++seq) {
    const int mid = lo + d;
    const bool lower = (v & d) == 0;
    const Range keep = lower ? Cover(groups, lo, mid) : Cover(groups, mid, hi);
    const Range give = lower ? Cover(groups, mid, hi) : Cover(groups, lo, mid);
    const int peer = fold.RealRank(v ^ d);
    transport::RequestPtr recv;
    char* stage = nullptr;
    if (keep.count > 0) {
      stage = workspace.Allocate(keep.count * elem);
      recv = ctx.Recv(peer, seq, stage, keep.count * elem);
    }
    if (give.count > 0) sends.push_back(ctx.Send(peer, seq, src + give.begin * elem, give.count * elem));
    if (recv) {
      SILK_RETURN_IF_ERROR(ctx.Wait(recv));
      kernels::Reduce(type, op, acc + keep.begin * elem, src + keep.begin * elem, stage, keep.count);
    }
    src = acc;
    (lower ? hi : lo) = mid;
  }
  // The all-gather that follows writes into the ranges these sends read.
  return ctx.WaitAll(sends);
}

// Recursive doubling: group vrank of `buffer` is filled; on return every group is.
absl::Status Double(OpContext& ctx, const Fold& fold, const Blocks& groups, char* buffer, size_t elem) {
  const int v = fold.vrank;
  std::vector<transport::RequestPtr> sends;
  uint32_t seq = kDoublingSeq;
  for (int d = 1; d < fold.p; d *= 2, ++seq) {
    const int first = v & ~(d - 1), peer_first = (v ^ d) & ~(d - 1);
    const Range mine = Cover(groups, first, first + d);
    const Range theirs = Cover(groups, peer_first, peer_first + d);
    const int peer = fold.RealRank(v ^ d);
    transport::RequestPtr recv;
    if (theirs.count > 0) recv = ctx.Recv(peer, seq, buffer + theirs.begin * elem, theirs.count * elem);
    if (mine.count > 0) sends.push_back(ctx.Send(peer, seq, buffer + mine.begin * elem, mine.count * elem));
    if (recv) SILK_RETURN_IF_ERROR(ctx.Wait(recv));
  }
  return ctx.WaitAll(sends);
}

}  // namespace

std::vector<int> HalvingDoublingPeers(int n, int rank) {
  const Fold fold(n, rank);
  std::vector<int> peers;
  if (fold.partner >= 0) peers.push_back(fold.partner);
  if (fold.vrank >= 0) {
    for (int d = 1; d < fold.p; d *= 2) peers.push_back(fold.RealRank(fold.vrank ^ d));
  }
  return peers;
}

absl::Status HalvingDoublingAllreduce(OpContext& ctx, Workspace& workspace, const void* input, void* output,
                                      size_t count, DataType type, ReduceOp op) {
  const int n = ctx.size();
  const size_t elem = DataTypeSize(type), bytes = count * elem;
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  if (n == 1 || bytes == 0) {
    if (bytes > 0 && in != out) std::memcpy(out, in, bytes);
    return absl::OkStatus();
  }
  const Fold fold(n, ctx.rank());
  if (fold.vrank < 0) {
    // Hand the data over; in place, the result may land only once the send has read it.
    SILK_RETURN_IF_ERROR(SendAndWait(ctx, fold.partner, kFoldInSeq, in, bytes));
    return RecvAndWait(ctx, fold.partner, kFoldOutSeq, out, bytes);
  }
  const char* src = in;
  if (fold.partner >= 0) {
    char* stage = workspace.Allocate(bytes);
    SILK_RETURN_IF_ERROR(RecvAndWait(ctx, fold.partner, kFoldInSeq, stage, bytes));
    kernels::Reduce(type, op, out, in, stage, count);
    src = out;
  }
  const Blocks groups = BalancedBlocks(count, fold.p);
  SILK_RETURN_IF_ERROR(Halve(ctx, workspace, fold, groups, src, out, type, op));
  const Range owned = groups[fold.vrank];
  if (op == ReduceOp::kAvg) kernels::Scale(type, out + owned.begin * elem, owned.count, n);
  SILK_RETURN_IF_ERROR(Double(ctx, fold, groups, out, elem));
  if (fold.partner >= 0) return SendAndWait(ctx, fold.partner, kFoldOutSeq, out, bytes);
  return absl::OkStatus();
}

absl::Status HalvingDoublingReduceScatter(OpContext& ctx, Workspace& workspace, const void* input, const Blocks& blocks,
                                          void* out_block, DataType type, ReduceOp op) {
  const int n = ctx.size(), rank = ctx.rank();
  const size_t elem = DataTypeSize(type);
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(out_block);
  const Range mine = blocks[rank];
  const size_t total = Cover(blocks, 0, n).count;
  if (n == 1 || total == 0) {
    if (mine.count > 0 && out != in + mine.begin * elem) std::memcpy(out, in + mine.begin * elem, mine.count * elem);
    return absl::OkStatus();
  }
  const Fold fold(n, rank);
  if (fold.vrank < 0) {
    SILK_RETURN_IF_ERROR(SendAndWait(ctx, fold.partner, kFoldInSeq, in, total * elem));
    return RecvAndWait(ctx, fold.partner, kFoldOutSeq, out, mine.count * elem);
  }
  // The whole buffer is reduced in scratch: the output holds only this rank's block.
  char* acc = workspace.Allocate(total * elem);
  const char* src = in;
  if (fold.partner >= 0) {
    char* stage = workspace.Allocate(total * elem);
    SILK_RETURN_IF_ERROR(RecvAndWait(ctx, fold.partner, kFoldInSeq, stage, total * elem));
    kernels::Reduce(type, op, acc, in, stage, total);
    src = acc;
  }
  const Blocks groups = fold.Groups(blocks);
  SILK_RETURN_IF_ERROR(Halve(ctx, workspace, fold, groups, src, acc, type, op));
  const Range owned = groups[fold.vrank];
  if (op == ReduceOp::kAvg) kernels::Scale(type, acc + owned.begin * elem, owned.count, n);
  transport::RequestPtr handback;
  if (fold.partner >= 0 && blocks[fold.partner].count > 0) {
    const Range theirs = blocks[fold.partner];
    handback = ctx.Send(fold.partner, kFoldOutSeq, acc + theirs.begin * elem, theirs.count * elem);
  }
  if (mine.count > 0) std::memcpy(out, acc + mine.begin * elem, mine.count * elem);
  return handback ? ctx.Wait(handback) : absl::OkStatus();
}

absl::Status HalvingDoublingAllgather(OpContext& ctx, void* buffer, const Blocks& blocks, size_t element_size) {
  const int n = ctx.size(), rank = ctx.rank();
  const size_t elem = element_size;
  char* data = static_cast<char*>(buffer);
  const size_t total = Cover(blocks, 0, n).count;
  if (n == 1 || total == 0) return absl::OkStatus();
  const Fold fold(n, rank);
  const Range mine = blocks[rank];
  if (fold.vrank < 0) {
    // The result rewrites this rank's block with the same bytes; only after the send has read it.
    SILK_RETURN_IF_ERROR(SendAndWait(ctx, fold.partner, kFoldInSeq, data + mine.begin * elem, mine.count * elem));
    return RecvAndWait(ctx, fold.partner, kFoldOutSeq, data, total * elem);
  }
  if (fold.partner >= 0) {
    const Range theirs = blocks[fold.partner];
    SILK_RETURN_IF_ERROR(RecvAndWait(ctx, fold.partner, kFoldInSeq, data + theirs.begin * elem, theirs.count * elem));
  }
  SILK_RETURN_IF_ERROR(Double(ctx, fold, fold.Groups(blocks), data, elem));
  if (fold.partner >= 0) return SendAndWait(ctx, fold.partner, kFoldOutSeq, data, total * elem);
  return absl::OkStatus();
}

}  // namespace silk::algorithms
