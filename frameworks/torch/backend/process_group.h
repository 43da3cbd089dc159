// ProcessGroupSilk: Silk as a torch.distributed backend ("silk").
//
// Each process group owns one Silk Communicator, created by a rendezvous over
// the c10d store that init_process_group / new_group hands over (so torchrun,
// mpirun and env:// launches all work), with Config::FromEnvironment() and the
// group's timeout as the per-operation timeout. Every collective is issued
// with Silk's *Async call and runs on the communicator's engine thread, in
// issue order; the returned SilkWork keeps the tensors alive until then.
//
// Tensors: dense CPU tensors (see tensor_buffer.h for staging and where GPU
// tensors will go, types.h for the type and reduction mapping). Arguments are
// checked when a collective is issued (a bad one raises at once); failures
// while it runs are raised by wait() and the future.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "frameworks/torch/backend/tensor_buffer.h"
#include "frameworks/torch/backend/torch_version.h"
#include "frameworks/torch/backend/work.h"
#include "runtime/communicator.h"

namespace silk::pytorch {

class ProcessGroupSilk : public BackendBase {
 public:
  // Joins the group's rendezvous over `store` as `rank` of `size`; throws
  // (RuntimeError in Python) with Silk's message if the communicator cannot
  // be created within `timeout`.
  static c10::intrusive_ptr<ProcessGroupSilk> Create(const c10::intrusive_ptr<::c10d::Store>& store, int rank,
                                                     int size, std::chrono::milliseconds timeout);

  explicit ProcessGroupSilk(std::shared_ptr<Communicator> comm);
  // Elastic jobs (SILK_ELASTIC=1): after a collective failed because a rank
  // was lost, every survivor calls this (silk.torch.reconfigure). The
  // communicator agrees on the new membership in place (Communicator::
  // Reconfigure); torch fixes a group's rank and size at construction, so the
  // result is a new group over the same communicator, and `old` raises from
  // then on, naming the group to use instead. Throws with Silk's message.
  static c10::intrusive_ptr<ProcessGroupSilk> Reconfigure(const c10::intrusive_ptr<ProcessGroupSilk>& old,
                                                          int64_t admit_up_to, Communicator::Reconfiguration* out);
  ~ProcessGroupSilk() override;
  // The last strong reference is gone: the communicator closes now, even
  // though the object lives on while weak references (the registry of live
  // groups) remain.
  void release_resources() override;

  // How to wait for Silk's threads (in the destructor) when they may be
  // running callbacks that take a lock the waiting thread holds: the Python
  // module installs one that releases the GIL. Default: just wait.
  using BlockingRegion = void (*)(const std::function<void()>& wait);
  static void SetBlockingRegion(BlockingRegion region);

  const std::string getBackendName() const override { return "silk"; }
  // Raises (as `operation`) once the group was shut down.
  std::shared_ptr<Communicator> Comm(const char* operation) const;
  // Null once the group was shut down.
  std::shared_ptr<Communicator> CommOrNull() const;
  Communicator& communicator() { return *Comm("communicator"); }

  // Waits up to `grace` for every operation issued so far to complete, future
  // callbacks included; if some have not by then, aborts the communicator so
  // that they fail at once, and waits for that. Meant for interpreter exit:
  // afterwards no callback of this group will ask for the GIL.
  void FinishInFlight(absl::Duration grace);
  // FinishInFlight, then closes the communicator, saying goodbye to every
  // peer (so they see an orderly end, not a lost connection); any later call
  // on this group raises. For interpreter exit, where the group itself may
  // never be destroyed.
  void Shutdown(absl::Duration grace);
  // Shutdown on every group made by Create that is still alive.
  static void ShutdownAll(absl::Duration grace);

  c10::intrusive_ptr<::c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                             const ::c10d::BroadcastOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                             const ::c10d::AllreduceOptions& opts = {}) override;
  // All tensors (of one type) are reduced as one buffer: one operation.
  c10::intrusive_ptr<::c10d::Work> allreduce_coalesced(std::vector<at::Tensor>& tensors,
                                                       const ::c10d::AllreduceCoalescedOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> reduce(std::vector<at::Tensor>& tensors,
                                          const ::c10d::ReduceOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& output_tensors,
                                             std::vector<at::Tensor>& input_tensors,
                                             const ::c10d::AllgatherOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> _allgather_base(at::Tensor& output, at::Tensor& input,
                                                   const ::c10d::AllgatherOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> reduce_scatter(std::vector<at::Tensor>& output_tensors,
                                                  std::vector<std::vector<at::Tensor>>& input_tensors,
                                                  const ::c10d::ReduceScatterOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> _reduce_scatter_base(at::Tensor& output, at::Tensor& input,
                                                        const ::c10d::ReduceScatterOptions& opts = {}) override;
  // Splits as torch.distributed documents them (rows of dim 0; empty: equal),
  // equal or not (unequal ones run as Silk's Alltoallv). process_group_p2p.cc.
  c10::intrusive_ptr<::c10d::Work> alltoall_base(at::Tensor& output, at::Tensor& input,
                                                 std::vector<int64_t>& output_split_sizes,
                                                 std::vector<int64_t>& input_split_sizes,
                                                 const ::c10d::AllToAllOptions& opts = {}) override;
  // Lists of size() tensors; their sizes may differ (tensor j goes to rank j).
  c10::intrusive_ptr<::c10d::Work> alltoall(std::vector<at::Tensor>& output_tensors,
                                            std::vector<at::Tensor>& input_tensors,
                                            const ::c10d::AllToAllOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> gather(std::vector<std::vector<at::Tensor>>& output_tensors,
                                          std::vector<at::Tensor>& input_tensors,
                                          const ::c10d::GatherOptions& opts = {}) override;
  c10::intrusive_ptr<::c10d::Work> scatter(std::vector<at::Tensor>& output_tensors,
                                           std::vector<std::vector<at::Tensor>>& input_tensors,
                                           const ::c10d::ScatterOptions& opts = {}) override;
  // Point-to-point (collectives/point_to_point.h): not queued behind the
  // group's collectives; the n-th send to a rank with a tag matches that
  // rank's n-th recv from this one with the tag. A bad argument raises on
  // this rank only. batch_isend_irecv works through these.
  c10::intrusive_ptr<::c10d::Work> send(std::vector<at::Tensor>& tensors, int dst_rank, int tag) override;
  c10::intrusive_ptr<::c10d::Work> recv(std::vector<at::Tensor>& tensors, int src_rank, int tag) override;
  // Raises: Silk matches a message by its sender, so a receive names it.
  c10::intrusive_ptr<::c10d::Work> recvAnysource(std::vector<at::Tensor>& tensors, int tag) override;
  c10::intrusive_ptr<::c10d::Work> barrier(const ::c10d::BarrierOptions& opts = {}) override;

 private:
  // Runs `call`; a refusal of its arguments (raised before any Silk call) is
  // first passed to silk::Reject, so the peers' matching call fails instead of
  // pairing with this rank's next one, then raised.
  c10::intrusive_ptr<::c10d::Work> Refusable(CollectiveKind kind,
                                             const std::function<c10::intrusive_ptr<::c10d::Work>()>& call);
  // Wraps a launched Silk operation (or throws the error that kept it from
  // launching) in a SilkWork that owns `buffers` (and `claim`, if any).
  c10::intrusive_ptr<::c10d::Work> Issue(::c10d::OpType type, const char* title, std::vector<at::Tensor> outputs,
                                         std::vector<TensorBuffer> buffers, absl::StatusOr<WorkPtr> operation,
                                         InFlight::Claim claim = {});

  // Adds `group` to the registry of live groups (ShutdownAll) and returns it.
  static c10::intrusive_ptr<ProcessGroupSilk> Register(c10::intrusive_ptr<ProcessGroupSilk> group);
  // Destroys the communicator (if not done already), without holding the GIL.
  void Close();

  mutable absl::Mutex comm_mu_;
  std::shared_ptr<Communicator> comm_ ABSL_GUARDED_BY(comm_mu_);  // null once closed
  std::string closed_because_ ABSL_GUARDED_BY(comm_mu_);        // why comm_ is null, for messages
  const std::shared_ptr<InFlight> in_flight_ = std::make_shared<InFlight>();
};

}  // namespace silk::pytorch
