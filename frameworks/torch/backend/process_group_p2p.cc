// ProcessGroupSilk's point-to-point calls, rooted gather and scatter, and
// all-to-all with equal or unequal splits (process_group.h).
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collectives/collectives.h"
#include "collectives/gather_scatter.h"
#include "collectives/point_to_point.h"
#include "frameworks/torch/backend/arguments.h"
#include "frameworks/torch/backend/process_group.h"

namespace silk::pytorch {
namespace {

using Access = TensorBuffer::Access;

// How many of Silk's elements one element of `type` is (1, or its bytes when
// it moves as uint8), and which.
MovedElements Unit(at::ScalarType type) { return MovementType(type, 1); }

// Elements per row of dim 0 (1 for a 0-d tensor).
int64_t RowElements(const at::Tensor& t) { return t.dim() == 0 || t.size(0) == 0 ? 1 : t.numel() / t.size(0); }

// Counts in Silk's elements of each rank's block: the split sizes (rows), or
// equal blocks when none were given.
std::vector<size_t> Counts(const at::Tensor& t, const std::vector<int64_t>& splits, int size, const char* what) {
  const char* op = "alltoall_base";
  const size_t unit = Unit(t.scalar_type()).count;
  std::vector<size_t> counts(size);
  if (splits.empty()) {
    Check(t.dim() >= 1 && t.size(0) % size == 0, op,
          absl::StrCat("the ", what, "'s first dimension (", t.dim() >= 1 ? t.size(0) : 0,
                       ") must split evenly across ", size, " ranks when no split sizes are given"));
    for (size_t& c : counts) c = static_cast<size_t>(t.numel() / size) * unit;
    return counts;
  }
  Check(static_cast<int>(splits.size()) == size, op,
        absl::StrCat(what, "_split_sizes has ", splits.size(), " entries; the group has ", size, " ranks"));
  int64_t rows = 0;
  for (int64_t s : splits) {
    Check(s >= 0, op, absl::StrCat(what, "_split_sizes=[", absl::StrJoin(splits, ", "), "] has a negative entry"));
    rows += s;
  }
  Check(t.dim() >= 1 && rows == t.size(0), op,
        absl::StrCat(what, "_split_sizes sum to ", rows, " rows but the ", what, " has ",
                     t.dim() >= 1 ? t.size(0) : 0));
  for (int j = 0; j < size; ++j) counts[j] = static_cast<size_t>(splits[j] * RowElements(t)) * unit;
  return counts;
}

bool AllEqual(const std::vector<size_t>& a, const std::vector<size_t>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != a[0] || b[i] != a[0]) return false;
  }
  return true;
}

// Equal blocks run as Alltoall (as before), anything else as Alltoallv.
absl::StatusOr<WorkPtr> LaunchAlltoall(Communicator& comm, const TensorBuffer& in, const TensorBuffer& out,
                                       std::vector<size_t> send, std::vector<size_t> recv, absl::Duration timeout) {
  const DataType type = Unit(in.scalar_type()).type;
  if (AllEqual(send, recv)) {
    AlltoallOptions options;
    options.input = in.data(), options.output = out.data(), options.count = send.empty() ? 0 : send[0];
    options.type = type, options.timeout = timeout;
    return AlltoallAsync(comm, options);
  }
  AlltoallvOptions options;
  options.input = in.data(), options.output = out.data(), options.type = type, options.timeout = timeout;
  options.send_counts = std::move(send), options.recv_counts = std::move(recv);
  return AlltoallvAsync(comm, options);
}

}  // namespace

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::alltoall_base(at::Tensor& output, at::Tensor& input,
                                                                 std::vector<int64_t>& output_split_sizes,
                                                                 std::vector<int64_t>& input_split_sizes,
                                                                 const ::c10d::AllToAllOptions& opts) {
  // Both paths are the one call for the peers: an equal-split refusal is an Alltoall.
  return Refusable(CollectiveKind::kAlltoall, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "alltoall_base";
    Check(input.defined() && output.defined(), op, "input and output must be tensors");
    CheckSameType(output, input, op);
    std::vector<size_t> send = Counts(input, input_split_sizes, size_, "input");
    std::vector<size_t> recv = Counts(output, output_split_sizes, size_, "output");
    TensorBuffer in = Buffer({input}, Access::kRead, op, "input tensor");
    TensorBuffer out = Buffer({output}, Access::kWrite, op, "output tensor");
    absl::StatusOr<WorkPtr> operation =
        LaunchAlltoall(*Comm(op), in, out, std::move(send), std::move(recv), OpTimeout(opts.timeout));
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(in));
    buffers.push_back(std::move(out));
    return Issue(::c10d::OpType::ALLTOALL_BASE, "silk:alltoall_base", {output}, std::move(buffers),
                 std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::alltoall(std::vector<at::Tensor>& output_tensors,
                                                            std::vector<at::Tensor>& input_tensors,
                                                            const ::c10d::AllToAllOptions& opts) {
  return Refusable(CollectiveKind::kAlltoall, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "alltoall";
    Check(static_cast<int>(input_tensors.size()) == size_ && static_cast<int>(output_tensors.size()) == size_, op,
          absl::StrCat("needs ", size_, " input and output tensors (got ", input_tensors.size(), " and ",
                       output_tensors.size(), ")"));
    std::vector<size_t> send(size_), recv(size_);
    for (int r = 0; r < size_; ++r) {
      Check(input_tensors[r].defined() && output_tensors[r].defined(), op, "every entry must be a tensor");
      CheckSameType(output_tensors[r], input_tensors[0], op);
      CheckSameType(input_tensors[r], input_tensors[0], op);
      const size_t unit = Unit(input_tensors[0].scalar_type()).count;
      send[r] = static_cast<size_t>(input_tensors[r].numel()) * unit;
      recv[r] = static_cast<size_t>(output_tensors[r].numel()) * unit;
    }
    TensorBuffer in = Buffer(input_tensors, Access::kRead, op, "input tensor");
    TensorBuffer out = Buffer(output_tensors, Access::kWrite, op, "output tensor");
    absl::StatusOr<WorkPtr> operation =
        LaunchAlltoall(*Comm(op), in, out, std::move(send), std::move(recv), OpTimeout(opts.timeout));
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(in));
    buffers.push_back(std::move(out));
    return Issue(::c10d::OpType::ALLTOALL, "silk:alltoall", output_tensors, std::move(buffers),
                 std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::gather(std::vector<std::vector<at::Tensor>>& output_tensors,
                                                          std::vector<at::Tensor>& input_tensors,
                                                          const ::c10d::GatherOptions& opts) {
  return Refusable(CollectiveKind::kGather, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "gather";
    CheckSingleTensor(input_tensors, op);
    const at::Tensor& input = input_tensors[0];
    Check(input.defined(), op, "the input must be a tensor");
    Check(opts.rootRank >= 0 && opts.rootRank < size_, op, absl::StrCat("root ", opts.rootRank, " is not a rank"));
    const bool root = rank_ == opts.rootRank;
    std::vector<at::Tensor> outputs;
    if (root) {
      Check(output_tensors.size() == 1 && static_cast<int>(output_tensors[0].size()) == size_, op,
            absl::StrCat("the root needs one list of ", size_, " output tensors"));
      outputs = output_tensors[0];
      for (const at::Tensor& t : outputs) {
        Check(t.defined() && t.numel() == input.numel(), op,
              absl::StrCat("every output tensor must have the input's ", input.numel(), " elements"));
        CheckSameType(t, input, op);
      }
    } else {
      Check(output_tensors.empty() || (output_tensors.size() == 1 && output_tensors[0].empty()), op,
            "only the root passes output tensors");
    }
    TensorBuffer in = Buffer({input}, Access::kRead, op, "input tensor");
    std::vector<TensorBuffer> buffers;
    GatherOptions options;
    options.input = in.data();
    const MovedElements moved = MovementType(in.scalar_type(), in.numel());
    options.count = moved.count, options.type = moved.type, options.root = opts.rootRank;
    options.timeout = OpTimeout(opts.timeout);
    if (root) {
      buffers.push_back(Buffer(outputs, Access::kWrite, op, "output tensor"));
      options.output = buffers.back().data();
    }
    absl::StatusOr<WorkPtr> operation = GatherAsync(*Comm(op), options);
    buffers.push_back(std::move(in));
    return Issue(::c10d::OpType::GATHER, "silk:gather", outputs, std::move(buffers), std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::scatter(std::vector<at::Tensor>& output_tensors,
                                                           std::vector<std::vector<at::Tensor>>& input_tensors,
                                                           const ::c10d::ScatterOptions& opts) {
  return Refusable(CollectiveKind::kScatter, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "scatter";
    CheckSingleTensor(output_tensors, op);
    const at::Tensor& output = output_tensors[0];
    Check(output.defined(), op, "the output must be a tensor");
    Check(opts.rootRank >= 0 && opts.rootRank < size_, op, absl::StrCat("root ", opts.rootRank, " is not a rank"));
    const bool root = rank_ == opts.rootRank;
    if (root) {
      Check(input_tensors.size() == 1 && static_cast<int>(input_tensors[0].size()) == size_, op,
            absl::StrCat("the root needs one list of ", size_, " input tensors"));
      for (const at::Tensor& t : input_tensors[0]) {
        Check(t.defined() && t.numel() == output.numel(), op,
              absl::StrCat("every input tensor must have the output's ", output.numel(), " elements"));
        CheckSameType(output, t, op);
      }
    } else {
      Check(input_tensors.empty() || (input_tensors.size() == 1 && input_tensors[0].empty()), op,
            "only the root passes input tensors");
    }
    TensorBuffer out = Buffer(output_tensors, Access::kWrite, op, "output tensor");
    std::vector<TensorBuffer> buffers;
    ScatterOptions options;
    options.output = out.data();
    const MovedElements moved = MovementType(out.scalar_type(), out.numel());
    options.count = moved.count, options.type = moved.type, options.root = opts.rootRank;
    options.timeout = OpTimeout(opts.timeout);
    if (root) {
      buffers.push_back(Buffer(input_tensors[0], Access::kRead, op, "input tensor"));
      options.input = buffers.back().data();
    }
    absl::StatusOr<WorkPtr> operation = ScatterAsync(*Comm(op), options);
    buffers.push_back(std::move(out));
    return Issue(::c10d::OpType::SCATTER, "silk:scatter", output_tensors, std::move(buffers), std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::send(std::vector<at::Tensor>& tensors, int dst_rank, int tag) {
  const char* op = "send";
  CheckSingleTensor(tensors, op);
  TensorBuffer buffer = Buffer(tensors, Access::kRead, op, "tensor");
  const MovedElements moved = MovementType(buffer.scalar_type(), buffer.numel());
  SendOptions options;
  options.data = buffer.data(), options.count = moved.count, options.type = moved.type;
  options.peer = dst_rank, options.tag = tag;
  absl::StatusOr<WorkPtr> operation = SendAsync(*Comm(op), options);
  std::vector<TensorBuffer> buffers;
  buffers.push_back(std::move(buffer));
  return Issue(::c10d::OpType::SEND, "silk:send", {}, std::move(buffers), std::move(operation));
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::recv(std::vector<at::Tensor>& tensors, int src_rank, int tag) {
  const char* op = "recv";
  CheckSingleTensor(tensors, op);
  TensorBuffer buffer = Buffer(tensors, Access::kWrite, op, "tensor");
  const MovedElements moved = MovementType(buffer.scalar_type(), buffer.numel());
  RecvOptions options;
  options.data = buffer.data(), options.count = moved.count, options.type = moved.type;
  options.peer = src_rank, options.tag = tag;
  absl::StatusOr<WorkPtr> operation = RecvAsync(*Comm(op), options);
  std::vector<TensorBuffer> buffers;
  buffers.push_back(std::move(buffer));
  return Issue(::c10d::OpType::RECV, "silk:recv", tensors, std::move(buffers), std::move(operation));
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::recvAnysource(std::vector<at::Tensor>&, int) {
  Fail("recv", "needs a source rank (src=...): Silk matches a message by its sender, so it cannot receive from "
               "any source");
}

}  // namespace silk::pytorch
