#include "collectives/gather_scatter.h"

#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "collectives/launch.h"
#include "collectives/validation.h"
#include "runtime/core/status_macros.h"

namespace silk {
namespace {

char nothing;  // 0-byte messages still need an address

const char* At(const void* base, size_t offset) { return static_cast<const char*>(base) + offset; }
char* At(void* base, size_t offset) { return static_cast<char*>(base) + offset; }

// One message per pair: the root posts a receive (gather) or a send (scatter)
// for every other rank, the others one send or receive.
absl::Status RunRooted(OpContext& ctx, bool gather, const void* input, void* output, size_t block, int root) {
  std::vector<transport::RequestPtr> requests;
  const int n = ctx.size(), self = ctx.rank();
  if (self == root) {
    for (int peer = 0; peer < n; ++peer) {
      const size_t at = static_cast<size_t>(peer) * block;
      if (peer == root) {
        const void* from = gather ? input : At(input, at);
        void* to = gather ? At(output, at) : output;
        if (from != to && block > 0) std::memcpy(to, from, block);
      } else if (gather) {
        requests.push_back(ctx.Recv(peer, 0, block > 0 ? At(output, at) : &nothing, block));
      } else {
        requests.push_back(ctx.Send(peer, 0, block > 0 ? At(input, at) : &nothing, block));
      }
    }
  } else if (gather) {
    requests.push_back(ctx.Send(root, 0, block > 0 ? input : &nothing, block));
  } else {
    requests.push_back(ctx.Recv(root, 0, block > 0 ? output : &nothing, block));
  }
  return ctx.WaitAll(requests);
}

absl::StatusOr<WorkPtr> LaunchRooted(Communicator& comm, bool gather, const void* input, void* output, size_t count,
                                     DataType type, int root, absl::Duration timeout) {
  const char* name = gather ? "gather" : "scatter";
  SILK_RETURN_IF_ERROR(ValidateType(type));
  SILK_RETURN_IF_ERROR(ValidateRoot(root, comm.size(), name));
  SILK_ASSIGN_OR_RETURN(const size_t block, BufferBytes(count, 1, type, name));
  SILK_ASSIGN_OR_RETURN(const size_t all, BufferBytes(count, comm.size(), type, name));
  const bool is_root = comm.rank() == root;
  // The one-block side: every rank's input (gather) or output (scatter).
  SILK_RETURN_IF_ERROR(ValidateBuffer(gather ? input : output, block, gather ? "gather input" : "scatter output"));
  if (is_root) {
    const void* whole = gather ? output : input;
    SILK_RETURN_IF_ERROR(ValidateBuffer(whole, all, gather ? "gather output (on the root)" : "scatter input (on the root)"));
    const void* one = gather ? input : output;
    SILK_RETURN_IF_ERROR(ValidateBlockPlacement(one, block, whole, all, At(whole, root * block), name));
  }
  LaunchOptions launch;
  launch.descriptor = MakeDescriptor(gather ? CollectiveKind::kGather : CollectiveKind::kScatter, type, ReduceOp::kSum,
                                     root, count, algorithms::Algorithm::kPairwise);
  launch.timeout = timeout;
  return Launch(comm, std::move(launch), [=](OpContext& ctx, algorithms::Workspace&) {
    return RunRooted(ctx, gather, input, output, block, root);
  });
}

absl::Status CheckCounts(const std::vector<size_t>& counts, const std::vector<size_t>& offsets, int size,
                         const char* what) {
  if (static_cast<int>(counts.size()) != size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("alltoallv: %s_counts has %d entries; the communicator has %d ranks", what, counts.size(), size));
  }
  if (!offsets.empty() && static_cast<int>(offsets.size()) != size) {
    return absl::InvalidArgumentError(absl::StrFormat("alltoallv: %s_offsets has %d entries; needs %d or none", what,
                                                      offsets.size(), size));
  }
  return absl::OkStatus();
}

// Offsets in bytes (back to back when none were given), and the buffer's extent.
absl::StatusOr<std::pair<std::vector<size_t>, size_t>> Layout(const std::vector<size_t>& counts,
                                                              const std::vector<size_t>& offsets, DataType type) {
  std::vector<size_t> bytes_at(counts.size());
  size_t extent = 0, next = 0;
  for (size_t j = 0; j < counts.size(); ++j) {
    SILK_ASSIGN_OR_RETURN(const size_t bytes, BufferBytes(counts[j], 1, type, "alltoallv"));
    const size_t element_offset = offsets.empty() ? next : offsets[j];
    SILK_ASSIGN_OR_RETURN(bytes_at[j], BufferBytes(element_offset, 1, type, "alltoallv offset"));
    next = element_offset + counts[j];
    extent = std::max(extent, bytes_at[j] + bytes);
  }
  return std::make_pair(std::move(bytes_at), extent);
}

absl::StatusOr<WorkPtr> LaunchAlltoallv(Communicator& comm, const AlltoallvOptions& o) {
  const int n = comm.size();
  SILK_RETURN_IF_ERROR(ValidateType(o.type));
  SILK_RETURN_IF_ERROR(CheckCounts(o.send_counts, o.send_offsets, n, "send"));
  SILK_RETURN_IF_ERROR(CheckCounts(o.recv_counts, o.recv_offsets, n, "recv"));
  SILK_ASSIGN_OR_RETURN(auto send, Layout(o.send_counts, o.send_offsets, o.type));
  SILK_ASSIGN_OR_RETURN(auto recv, Layout(o.recv_counts, o.recv_offsets, o.type));
  SILK_RETURN_IF_ERROR(ValidateBuffer(o.input, send.second, "alltoallv input"));
  SILK_RETURN_IF_ERROR(ValidateBuffer(o.output, recv.second, "alltoallv output"));
  const uintptr_t in = reinterpret_cast<uintptr_t>(o.input), out = reinterpret_cast<uintptr_t>(o.output);
  if (send.second > 0 && recv.second > 0 && in < out + recv.second && out < in + send.second) {
    return absl::InvalidArgumentError("alltoallv: input and output overlap (alltoallv is not in place)");
  }
  const int self = comm.rank();
  if (o.send_counts[self] != o.recv_counts[self]) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "alltoallv: rank %d sends itself %d elements but receives %d", self, o.send_counts[self], o.recv_counts[self]));
  }
  LaunchOptions launch;
  launch.descriptor = MakeDescriptor(CollectiveKind::kAlltoallv, o.type, ReduceOp::kSum, -1, 0,
                                     algorithms::Algorithm::kPairwise);
  launch.timeout = o.timeout;
  const size_t element = DataTypeSize(o.type);
  std::vector<size_t> send_bytes(n), recv_bytes(n);
  for (int j = 0; j < n; ++j) send_bytes[j] = o.send_counts[j] * element, recv_bytes[j] = o.recv_counts[j] * element;
  return Launch(comm, std::move(launch),
                [input = o.input, output = o.output, send_at = std::move(send.first), recv_at = std::move(recv.first),
                 send_bytes = std::move(send_bytes), recv_bytes = std::move(recv_bytes)](OpContext& ctx,
                                                                                      algorithms::Workspace&) {
                  const int size = ctx.size(), me = ctx.rank();
                  std::vector<transport::RequestPtr> requests;
                  // Nearest peers first, so the pairs of each step meet early.
                  for (int step = 1; step < size; ++step) {
                    const int from = (me + size - step) % size;
                    void* into = recv_bytes[from] > 0 ? At(output, recv_at[from]) : &nothing;
                    requests.push_back(ctx.Recv(from, 0, into, recv_bytes[from]));
                  }
                  for (int step = 1; step < size; ++step) {
                    const int to = (me + step) % size;
                    const void* data = send_bytes[to] > 0 ? At(input, send_at[to]) : &nothing;
                    requests.push_back(ctx.Send(to, 0, data, send_bytes[to]));
                  }
                  if (send_bytes[me] > 0) std::memcpy(At(output, recv_at[me]), At(input, send_at[me]), send_bytes[me]);
                  return ctx.WaitAll(requests);
                });
}

}  // namespace

absl::StatusOr<WorkPtr> GatherAsync(Communicator& comm, const GatherOptions& o) {
  return RejectOnError(comm, CollectiveKind::kGather,
                       LaunchRooted(comm, true, o.input, o.output, o.count, o.type, o.root, o.timeout));
}

absl::Status Gather(Communicator& comm, const GatherOptions& options) { return WaitFor(GatherAsync(comm, options)); }

absl::StatusOr<WorkPtr> ScatterAsync(Communicator& comm, const ScatterOptions& o) {
  return RejectOnError(comm, CollectiveKind::kScatter,
                       LaunchRooted(comm, false, o.input, o.output, o.count, o.type, o.root, o.timeout));
}

absl::Status Scatter(Communicator& comm, const ScatterOptions& options) {
  return WaitFor(ScatterAsync(comm, options));
}

absl::StatusOr<WorkPtr> AlltoallvAsync(Communicator& comm, const AlltoallvOptions& options) {
  return RejectOnError(comm, CollectiveKind::kAlltoallv, LaunchAlltoallv(comm, options));
}

absl::Status Alltoallv(Communicator& comm, const AlltoallvOptions& options) {
  return WaitFor(AlltoallvAsync(comm, options));
}

}  // namespace silk
