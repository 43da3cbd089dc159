#include "collectives/algorithms/tree.h"

#include <bit>
#include <cstring>
#include <vector>

#include "collectives/kernels/reduce.h"
#include "runtime/core/status_macros.h"

namespace silk::algorithms {
namespace {

struct TreePosition {
  int parent = -1;            // real rank; -1 at the root
  std::vector<int> children;  // real ranks, nearest (smallest subtree) first
};

TreePosition Position(int n, int rank, int root) {
  const int v = (rank - root + n) % n;
  auto real = [&](int w) { return (w + root) % n; };
  // The root's "lowest bit" is above every rank, so all powers of two below n are its children.
  const int low = v == 0 ? static_cast<int>(std::bit_ceil(static_cast<unsigned>(n))) : (v & -v);
  TreePosition p;
  if (v != 0) p.parent = real(v - low);
  for (int m = 1; m < low; m *= 2) {
    if (v + m < n) p.children.push_back(real(v + m));
  }
  return p;
}

}  // namespace

absl::Status BinomialBroadcast(OpContext& ctx, const void* input, void* output, size_t bytes, int root) {
  const int n = ctx.size(), rank = ctx.rank();
  char* out = static_cast<char*>(output);
  if (rank == root && bytes > 0 && input != output) std::memcpy(out, input, bytes);
  if (n == 1 || bytes == 0) return absl::OkStatus();
  const TreePosition p = Position(n, rank, root);
  if (p.parent >= 0) SILK_RETURN_IF_ERROR(ctx.Wait(ctx.Recv(p.parent, 0, out, bytes)));
  std::vector<transport::RequestPtr> sends;
  // Largest subtree first: it has the longest way still to go.
  for (auto it = p.children.rbegin(); it != p.children.rend(); ++it) sends.push_back(ctx.Send(*it, 0, out, bytes));
  return ctx.WaitAll(sends);
}

absl::Status BinomialReduce(OpContext& ctx, Workspace& workspace, const void* input, void* output, size_t count,
                            DataType type, ReduceOp op, int root) {
  const int n = ctx.size(), rank = ctx.rank();
  const size_t bytes = count * DataTypeSize(type);
  const char* in = static_cast<const char*>(input);
  if (n == 1 || bytes == 0) {
    if (bytes > 0 && input != output) std::memcpy(output, input, bytes);
    return absl::OkStatus();
  }
  const TreePosition p = Position(n, rank, root);
  if (p.children.empty()) return ctx.Wait(ctx.Send(p.parent, 0, in, bytes));  // a leaf

  std::vector<char*> partials;
  std::vector<transport::RequestPtr> recvs;
  for (int child : p.children) {
    partials.push_back(workspace.Allocate(bytes));
    recvs.push_back(ctx.Recv(child, 0, partials.back(), bytes));
  }
  char* acc = rank == root ? static_cast<char*>(output) : workspace.Allocate(bytes);
  for (size_t i = 0; i < recvs.size(); ++i) {
    SILK_RETURN_IF_ERROR(ctx.Wait(recvs[i]));
    if (i == 0) {
      kernels::Reduce(type, op, acc, in, partials[0], count);
    } else {
      kernels::ReduceInto(type, op, acc, partials[i], count);
    }
  }
  if (rank == root) {
    if (op == ReduceOp::kAvg) kernels::Scale(type, acc, count, n);
    return absl::OkStatus();
  }
  return ctx.Wait(ctx.Send(p.parent, 0, acc, bytes));
}

}  // namespace silk::algorithms
