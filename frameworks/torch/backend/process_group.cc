#include "frameworks/torch/backend/process_group.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "collectives/collectives.h"
#include "frameworks/torch/backend/arguments.h"
#include "frameworks/torch/backend/torch_store.h"
#include "frameworks/torch/backend/types.h"
#include "runtime/bootstrap/store_bootstrap.h"
#include "runtime/core/config.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"

namespace silk::pytorch {
namespace {

using Access = TensorBuffer::Access;

std::atomic<ProcessGroupSilk::BlockingRegion> blocking_region{nullptr};

// The live groups made by Create, for ShutdownAll.
struct Registry {
  absl::Mutex mu;
  std::vector<c10::weak_intrusive_ptr<ProcessGroupSilk>> groups ABSL_GUARDED_BY(mu);
};
Registry& GetRegistry() {
  static Registry* registry = new Registry;  // never destroyed: used at exit
  return *registry;
}

// The live group new_group may split: the largest (the earliest of those),
// so that every member of a new group finds the same one.
std::shared_ptr<Communicator> SplitCandidate() {
  std::shared_ptr<Communicator> best;
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  for (const auto& weak : registry.groups) {
    c10::intrusive_ptr<ProcessGroupSilk> group = weak.lock();
    if (group == nullptr) continue;
    std::shared_ptr<Communicator> comm = group->CommOrNull();
    if (comm != nullptr && comm->status().ok() && (best == nullptr || comm->size() > best->size())) best = comm;
  }
  return best;
}

// new_group without new connections: the members tell each other which live
// group they would split (its job id) and their rank there, over the group's
// store. If all name the same one, the new group is split from it (no
// handshake); else (the first silk group of a job, or members that share no
// live group) the caller connects afresh. Every member decides alike.
absl::StatusOr<std::unique_ptr<Communicator>> SplitFromLiveGroup(bootstrap::Store& store, const std::string& prefix,
                                                                 int rank, int size, absl::Duration timeout) {
  std::shared_ptr<Communicator> parent = SplitCandidate();
  const std::string mine = parent == nullptr ? "none"
                                             : absl::StrCat(parent->job_id(), " ", parent->rank(), " ",
                                                            parent->next_child_id());
  if (absl::Status s = store.Set(absl::StrCat(prefix, rank), mine); !s.ok()) return s;
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back(absl::StrCat(prefix, r));
  absl::StatusOr<std::vector<std::string>> all = store.MultiGet(keys, timeout);
  if (!all.ok()) return all.status();
  std::vector<int> members;
  uint32_t id = 0;
  for (const std::string& record : *all) {
    std::vector<std::string> fields = absl::StrSplit(record, ' ');
    uint64_t job = 0;
    int member = -1;
    uint32_t next = 0;
    if (parent == nullptr || fields.size() != 3 || !absl::SimpleAtoi(fields[0], &job) || job != parent->job_id() ||
        !absl::SimpleAtoi(fields[1], &member) || !absl::SimpleAtoi(fields[2], &next)) {
      return std::unique_ptr<Communicator>();
    }
    members.push_back(member);
    id = std::max(id, next);
  }
  return parent->CreateChild(members, id, timeout);
}

struct Reduction {
  DataType type;
  ReduceOp op;
};

Reduction ReductionFor(const ::c10d::ReduceOp& op, at::ScalarType type, const char* operation) {
  return Reduction{ValueOrFail(ReductionType(type), operation), ValueOrFail(ToSilkReduceOp(op, type), operation)};
}

}  // namespace

c10::intrusive_ptr<ProcessGroupSilk> ProcessGroupSilk::Create(const c10::intrusive_ptr<::c10d::Store>& store,
                                                              int rank, int size,
                                                              std::chrono::milliseconds timeout) {
  const char* operation = "process group";
  absl::StatusOr<Config> config = Config::FromEnvironment();
  if (!config.ok()) Fail(operation, config.status().message());
  if (timeout.count() > 0) config->timeout = absl::Milliseconds(timeout.count());

  auto torch_store = std::make_shared<TorchStore>(store);
  // init_process_group and new_group already give each group a store prefix
  // of its own; the per-rank count separates groups made over one store by
  // hand. Every rank creates its groups in the same order, so counts agree.
  absl::StatusOr<int64_t> instance = torch_store->Add(absl::StrCat("silk/instances/", rank), 1);
  if (!instance.ok()) Fail(operation, instance.status().message());
  // An elastic job's first group is its membership's communicator, made
  // through the job's coordinator rather than the group's store.
  if (config->elastic && *instance == 1) {
    absl::StatusOr<std::unique_ptr<Communicator>> elastic = Communicator::CreateFromEnvironment(*config);
    if (!elastic.ok()) Fail(operation, absl::StrCat("elastic member ", rank, " could not join: ", elastic.status().message()));
    return Register(c10::make_intrusive<ProcessGroupSilk>(std::shared_ptr<Communicator>(*std::move(elastic))));
  }
  absl::StatusOr<std::unique_ptr<Communicator>> comm = SplitFromLiveGroup(
      *torch_store, absl::StrCat("silk/", *instance, "/split/"), rank, size, config->StartupTimeout());
  if (comm.ok() && *comm == nullptr) {
    auto bootstrap =
        std::make_unique<bootstrap::StoreBootstrap>(torch_store, rank, size, absl::StrCat("silk/", *instance));
    comm = Communicator::Create(std::move(bootstrap), *config);
  }
  if (!comm.ok()) {
    Fail(operation, absl::StrCat("rank ", rank, " of ", size, " could not join: ",
                                 absl::StatusCodeToString(comm.status().code()), ": ", comm.status().message()));
  }
  return Register(c10::make_intrusive<ProcessGroupSilk>(std::shared_ptr<Communicator>(*std::move(comm))));
}

c10::intrusive_ptr<ProcessGroupSilk> ProcessGroupSilk::Register(c10::intrusive_ptr<ProcessGroupSilk> group) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  std::erase_if(registry.groups, [](const auto& g) { return g.expired(); });
  registry.groups.emplace_back(group);
  return group;
}

c10::intrusive_ptr<ProcessGroupSilk> ProcessGroupSilk::Reconfigure(const c10::intrusive_ptr<ProcessGroupSilk>& old,
                                                                   int64_t admit_up_to,
                                                                   Communicator::Reconfiguration* out) {
  std::shared_ptr<Communicator> comm = old->Comm("reconfigure");
  if (!comm->elastic()) {
    Fail("reconfigure", "not an elastic launch (SILK_ELASTIC=1 with a silk-coordinator; docs/reliability.md): a "
                        "lost rank ends this job");
  }
  absl::StatusOr<Communicator::Reconfiguration> r = comm->Reconfigure(admit_up_to);
  if (!r.ok()) Fail("reconfigure", r.status().message());
  *out = *r;
  {
    absl::MutexLock lock(&old->comm_mu_);
    old->comm_.reset();  // the new group holds the communicator on
    old->closed_because_ = absl::StrCat("the group was reconfigured (membership epoch ", r->epoch,
                                        "): use the group silk.torch.reconfigure returned");
  }
  return Register(c10::make_intrusive<ProcessGroupSilk>(std::move(comm)));
}

std::shared_ptr<Communicator> ProcessGroupSilk::Comm(const char* operation) const {
  absl::MutexLock lock(&comm_mu_);
  if (comm_ == nullptr) {
    throw std::runtime_error(absl::StrCat("silk ", operation, ": ",
                                          closed_because_.empty()
                                              ? "the process group was shut down (the process is exiting)"
                                              : closed_because_));
  }
  return comm_;
}

std::shared_ptr<Communicator> ProcessGroupSilk::CommOrNull() const {
  absl::MutexLock lock(&comm_mu_);
  return comm_;
}

void ProcessGroupSilk::FinishInFlight(absl::Duration grace) {
  if (in_flight_->WaitUntilIdle(grace)) return;
  std::shared_ptr<Communicator> comm;
  {
    absl::MutexLock lock(&comm_mu_);
    comm = comm_;
  }
  if (comm == nullptr) return;
  comm->Abort(absl::CancelledError(absl::StrCat("the process is exiting with operations in flight (they had ",
                                                absl::FormatDuration(grace), " to finish)")));
  in_flight_->WaitUntilIdle(absl::Seconds(10));
}

void ProcessGroupSilk::Shutdown(absl::Duration grace) {
  FinishInFlight(grace);
  Close();
}

void ProcessGroupSilk::Close() {
  std::shared_ptr<Communicator> comm;
  {
    absl::MutexLock lock(&comm_mu_);
    comm.swap(comm_);
  }
  if (comm == nullptr) return;
  Log(LogLevel::kDebug, "closing the process group's communicator (%d other holders)", comm.use_count() - 1);
  // Destroying the communicator says goodbye to every peer and waits for its
  // engine and callback threads; a callback thread may be completing a future
  // whose (Python) callbacks need the GIL.
  BlockingRegion region = blocking_region.load();
  if (region != nullptr) {
    region([&comm] { comm.reset(); });
  } else {
    comm.reset();
  }
}

void ProcessGroupSilk::ShutdownAll(absl::Duration grace) {
  std::vector<c10::intrusive_ptr<ProcessGroupSilk>> groups;
  {
    Registry& registry = GetRegistry();
    absl::MutexLock lock(&registry.mu);
    for (const auto& weak : registry.groups) {
      if (auto group = weak.lock()) groups.push_back(std::move(group));
    }
  }
  for (const auto& group : groups) group->Shutdown(grace);
}

ProcessGroupSilk::ProcessGroupSilk(std::shared_ptr<Communicator> comm)
    : BackendBase(comm->rank(), comm->size()), comm_(std::move(comm)) {
  init();
}

void ProcessGroupSilk::SetBlockingRegion(BlockingRegion region) { blocking_region.store(region); }

ProcessGroupSilk::~ProcessGroupSilk() { Close(); }

void ProcessGroupSilk::release_resources() { Close(); }

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::Refusable(
    CollectiveKind kind, const std::function<c10::intrusive_ptr<::c10d::Work>()>& call) {
  try {
    return call();
  } catch (const RefusedCall& refused) {
    std::shared_ptr<Communicator> comm;
    {
      absl::MutexLock lock(&comm_mu_);
      comm = comm_;
    }
    if (comm != nullptr) Reject(*comm, kind, InvalidArgument(refused.what())).IgnoreError();  // raised below
    throw;
  }
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::Issue(::c10d::OpType type, const char* title,
                                                         std::vector<at::Tensor> outputs,
                                                         std::vector<TensorBuffer> buffers,
                                                         absl::StatusOr<WorkPtr> operation,
                                                         InFlight::Claim claim) {
  // Silk refused or failed it itself (and, for a refusal, told the peers).
  if (!operation.ok()) {
    throw std::runtime_error(absl::StrCat("silk ", absl::StripPrefix(title, "silk:"), ": ", operation.status().message()));
  }
  auto work = c10::make_intrusive<SilkWork>(rank_, type, title, std::move(outputs), std::move(buffers), in_flight_,
                                            std::move(claim));
  SilkWork::CompleteWith(work, *operation);
  return work;
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::broadcast(std::vector<at::Tensor>& tensors,
                                                             const ::c10d::BroadcastOptions& opts) {
  return Refusable(CollectiveKind::kBroadcast, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "broadcast";
    CheckSingleTensor(tensors, op);
    Check(opts.rootTensor == 0, op, "rootTensor must be 0 (one tensor per process)");
    TensorBuffer buffer = Buffer(tensors, Access::kReadWrite, op, "tensor");
    const MovedElements moved = MovementType(buffer.scalar_type(), buffer.numel());
    BroadcastOptions options;
    options.input = options.output = buffer.data();
    options.count = moved.count;
    options.type = moved.type;
    options.root = static_cast<int>(opts.rootRank);
    options.timeout = OpTimeout(opts.timeout);
    absl::StatusOr<WorkPtr> operation = BroadcastAsync(*Comm(op), options);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(buffer));
    return Issue(::c10d::OpType::BROADCAST, "silk:broadcast", tensors, std::move(buffers), std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::allreduce(std::vector<at::Tensor>& tensors,
                                                             const ::c10d::AllreduceOptions& opts) {
  return Refusable(CollectiveKind::kAllreduce, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "allreduce";
    CheckSingleTensor(tensors, op);
    TensorBuffer buffer = Buffer(tensors, Access::kReadWrite, op, "tensor");
    const Reduction reduction = ReductionFor(opts.reduceOp, buffer.scalar_type(), op);
    AllreduceOptions options;
    options.input = options.output = buffer.data();
    options.count = buffer.numel();
    options.type = reduction.type;
    options.op = reduction.op;
    options.timeout = OpTimeout(opts.timeout);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(buffer));
    InFlight::Claim claim = in_flight_->ClaimMemory(buffers);
    options.may_overlap = claim.independent();  // e.g. DDP's buckets: their WAN latencies overlap
    absl::StatusOr<WorkPtr> operation = AllreduceAsync(*Comm(op), options);
    return Issue(::c10d::OpType::ALLREDUCE, "silk:allreduce", tensors, std::move(buffers), std::move(operation),
                 std::move(claim));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::allreduce_coalesced(
    std::vector<at::Tensor>& tensors, const ::c10d::AllreduceCoalescedOptions& opts) {
  return Refusable(CollectiveKind::kAllreduce, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "allreduce_coalesced";
    TensorBuffer buffer = Buffer(tensors, Access::kReadWrite, op, "tensor");
    const Reduction reduction = ReductionFor(opts.reduceOp, buffer.scalar_type(), op);
    AllreduceOptions options;
    options.input = options.output = buffer.data();
    options.count = buffer.numel();
    options.type = reduction.type;
    options.op = reduction.op;
    options.timeout = OpTimeout(opts.timeout);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(buffer));
    InFlight::Claim claim = in_flight_->ClaimMemory(buffers);
    options.may_overlap = claim.independent();  // e.g. DDP's buckets: their WAN latencies overlap
    absl::StatusOr<WorkPtr> operation = AllreduceAsync(*Comm(op), options);
    return Issue(::c10d::OpType::ALLREDUCE_COALESCED, "silk:allreduce_coalesced", tensors, std::move(buffers),
                 std::move(operation), std::move(claim));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::reduce(std::vector<at::Tensor>& tensors,
                                                          const ::c10d::ReduceOptions& opts) {
  return Refusable(CollectiveKind::kReduce, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "reduce";
    CheckSingleTensor(tensors, op);
    Check(opts.rootTensor == 0, op, "rootTensor must be 0 (one tensor per process)");
    TensorBuffer buffer = Buffer(tensors, Access::kReadWrite, op, "tensor");
    const Reduction reduction = ReductionFor(opts.reduceOp, buffer.scalar_type(), op);
    ReduceOptions options;
    options.input = options.output = buffer.data();
    options.count = buffer.numel();
    options.type = reduction.type;
    options.op = reduction.op;
    options.root = static_cast<int>(opts.rootRank);
    options.timeout = OpTimeout(opts.timeout);
    absl::StatusOr<WorkPtr> operation = ReduceAsync(*Comm(op), options);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(buffer));
    return Issue(::c10d::OpType::REDUCE, "silk:reduce", tensors, std::move(buffers), std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::allgather(std::vector<std::vector<at::Tensor>>& output_tensors,
                                                             std::vector<at::Tensor>& input_tensors,
                                                             const ::c10d::AllgatherOptions& opts) {
  return Refusable(CollectiveKind::kAllgather, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "allgather";
    CheckSingleTensor(input_tensors, op);
    Check(output_tensors.size() == 1, op,
          absl::StrCat("takes one list of output tensors per process (got ", output_tensors.size(), ")"));
    std::vector<at::Tensor>& outputs = output_tensors[0];
    Check(static_cast<int>(outputs.size()) == size_, op,
          absl::StrCat("needs one output tensor per rank: ", size_, " (got ", outputs.size(), ")"));
    const at::Tensor& input = input_tensors[0];
    for (const at::Tensor& output : outputs) {
      Check(output.defined() && output.numel() == input.numel(), op,
            absl::StrCat("every output tensor must have the input's ", input.numel(), " elements"));
      CheckSameType(output, input, op);
    }
    TensorBuffer in = Buffer(input_tensors, Access::kRead, op, "input tensor");
    TensorBuffer out = Buffer(outputs, Access::kWrite, op, "output tensor");
    const MovedElements moved = MovementType(in.scalar_type(), in.numel());
    AllgatherOptions options;
    options.input = in.data();
    options.output = out.data();
    options.count = moved.count;
    options.type = moved.type;
    options.timeout = OpTimeout(opts.timeout);
    absl::StatusOr<WorkPtr> operation = AllgatherAsync(*Comm(op), options);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(in));
    buffers.push_back(std::move(out));
    return Issue(::c10d::OpType::ALLGATHER, "silk:allgather", outputs, std::move(buffers), std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::_allgather_base(at::Tensor& output, at::Tensor& input,
                                                                   const ::c10d::AllgatherOptions& opts) {
  return Refusable(CollectiveKind::kAllgather, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "_allgather_base";
    Check(input.defined() && output.defined() && output.numel() == size_ * input.numel(), op,
          absl::StrCat("the output must have size() * ", input.defined() ? input.numel() : 0, " elements"));
    CheckSameType(output, input, op);
    TensorBuffer in = Buffer({input}, Access::kRead, op, "input tensor");
    TensorBuffer out = Buffer({output}, Access::kWrite, op, "output tensor");
    const MovedElements moved = MovementType(in.scalar_type(), in.numel());
    AllgatherOptions options;
    options.input = in.data();
    options.output = out.data();
    options.count = moved.count;
    options.type = moved.type;
    options.timeout = OpTimeout(opts.timeout);
    absl::StatusOr<WorkPtr> operation = AllgatherAsync(*Comm(op), options);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(in));
    buffers.push_back(std::move(out));
    return Issue(::c10d::OpType::_ALLGATHER_BASE, "silk:_allgather_base", {output}, std::move(buffers),
                 std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::reduce_scatter(
    std::vector<at::Tensor>& output_tensors, std::vector<std::vector<at::Tensor>>& input_tensors,
    const ::c10d::ReduceScatterOptions& opts) {
  return Refusable(CollectiveKind::kReduceScatter, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "reduce_scatter";
    CheckSingleTensor(output_tensors, op);
    Check(input_tensors.size() == 1, op,
          absl::StrCat("takes one list of input tensors per process (got ", input_tensors.size(), ")"));
    std::vector<at::Tensor>& inputs = input_tensors[0];
    Check(static_cast<int>(inputs.size()) == size_, op,
          absl::StrCat("needs one input tensor per rank: ", size_, " (got ", inputs.size(), ")"));
    const at::Tensor& output = output_tensors[0];
    for (const at::Tensor& input : inputs) {
      Check(input.defined() && output.defined() && input.numel() == output.numel(), op,
            absl::StrCat("every input tensor must have the output's ", output.defined() ? output.numel() : 0,
                         " elements"));
      CheckSameType(output, input, op);
    }
    TensorBuffer in = Buffer(inputs, Access::kRead, op, "input tensor");
    TensorBuffer out = Buffer(output_tensors, Access::kWrite, op, "output tensor");
    const Reduction reduction = ReductionFor(opts.reduceOp, out.scalar_type(), op);
    ReduceScatterOptions options;
    options.input = in.data();
    options.output = out.data();
    options.count = out.numel();
    options.type = reduction.type;
    options.op = reduction.op;
    options.timeout = OpTimeout(opts.timeout);
    absl::StatusOr<WorkPtr> operation = ReduceScatterAsync(*Comm(op), options);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(in));
    buffers.push_back(std::move(out));
    return Issue(::c10d::OpType::REDUCE_SCATTER, "silk:reduce_scatter", output_tensors, std::move(buffers),
                 std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::_reduce_scatter_base(at::Tensor& output, at::Tensor& input,
                                                                        const ::c10d::ReduceScatterOptions& opts) {
  return Refusable(CollectiveKind::kReduceScatter, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    const char* op = "_reduce_scatter_base";
    Check(input.defined() && output.defined() && input.numel() == size_ * output.numel(), op,
          absl::StrCat("the input must have size() * ", output.defined() ? output.numel() : 0, " elements"));
    CheckSameType(output, input, op);
    TensorBuffer in = Buffer({input}, Access::kRead, op, "input tensor");
    TensorBuffer out = Buffer({output}, Access::kWrite, op, "output tensor");
    const Reduction reduction = ReductionFor(opts.reduceOp, out.scalar_type(), op);
    ReduceScatterOptions options;
    options.input = in.data();
    options.output = out.data();
    options.count = out.numel();
    options.type = reduction.type;
    options.op = reduction.op;
    options.timeout = OpTimeout(opts.timeout);
    absl::StatusOr<WorkPtr> operation = ReduceScatterAsync(*Comm(op), options);
    std::vector<TensorBuffer> buffers;
    buffers.push_back(std::move(in));
    buffers.push_back(std::move(out));
    return Issue(::c10d::OpType::_REDUCE_SCATTER_BASE, "silk:_reduce_scatter_base", {output}, std::move(buffers),
                 std::move(operation));
  });
}

c10::intrusive_ptr<::c10d::Work> ProcessGroupSilk::barrier(const ::c10d::BarrierOptions& opts) {
  return Refusable(CollectiveKind::kBarrier, [&]() -> c10::intrusive_ptr<::c10d::Work> {
    BarrierOptions options;
    options.timeout = OpTimeout(opts.timeout);
    return Issue(::c10d::OpType::BARRIER, "silk:barrier", {}, {}, BarrierAsync(*Comm("barrier"), options));
  });
}

}  // namespace silk::pytorch
