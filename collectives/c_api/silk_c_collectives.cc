// silk.h's collectives and point-to-point calls: each fills the C++ options,
// starts the operation, and finishes as its form asks (c_api::Finish).
#include <optional>
#include <utility>

#include "collectives/c_api/silk.h"
#include "collectives/c_api/silk_c_internal.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/point_to_point.h"

namespace {

using silk::c_api::Finish;
using silk::c_api::NullArgument;

silk::DataType Type(silk_datatype_t type) { return static_cast<silk::DataType>(type); }
silk::ReduceOp Op(silk_redop_t op) { return static_cast<silk::ReduceOp>(op); }

// Runs `start(comm)` for `name`: the blocking form passes work == nullptr.
// Inside a group, collectives may overlap one another (silk.h).
template <typename Start>
silk_result_t Call(const char* name, silk_comm_t* comm, silk_work_t** work, bool async, Start start) {
  if (comm == nullptr) return NullArgument(name);
  if (async) {
    if (work == nullptr) return NullArgument(name);
    *work = nullptr;
  }
  const bool group = silk::c_api::InGroup();
  // A blocking call outside a group waits at once: a small one on one node
  // may then run on this thread (collectives/launch.h).
  std::optional<silk::BlockingCall> blocking;
  if (!async && !group) blocking.emplace();
  return Finish(start(*comm->comm, group), async ? work : nullptr);
}

}  // namespace

extern "C" {

static silk_result_t AllreduceImpl(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, silk_redop_t op, silk_work_t** work, bool async) {
  return Call("silk_allreduce: comm or work", comm, work, async, [&](silk::Communicator& c, bool group) {
    silk::AllreduceOptions o;
    o.input = sendbuf, o.output = recvbuf, o.count = count, o.type = Type(type), o.op = Op(op), o.may_overlap = group;
    return silk::AllreduceAsync(c, o);
  });
}
silk_result_t silk_allreduce(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                             silk_datatype_t type, silk_redop_t op) {
  return AllreduceImpl(comm, sendbuf, recvbuf, count, type, op, nullptr, false);
}
silk_result_t silk_allreduce_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, silk_redop_t op, silk_work_t** work) {
  return AllreduceImpl(comm, sendbuf, recvbuf, count, type, op, work, true);
}

struct silk_error_feedback {
  silk::ErrorFeedback state;
};

silk_result_t silk_error_feedback_create(silk_error_feedback_t** feedback) {
  if (feedback == nullptr) return NullArgument("silk_error_feedback_create: feedback");
  *feedback = new silk_error_feedback_t;
  return SILK_SUCCESS;
}
void silk_error_feedback_reset(silk_error_feedback_t* feedback) {
  if (feedback != nullptr) feedback->state.Reset();
}
void silk_error_feedback_free(silk_error_feedback_t* feedback) { delete feedback; }

static silk_result_t CompressedImpl(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                    silk_datatype_t type, silk_redop_t op, silk_wan_compression_t compression,
                                    silk_error_feedback_t* feedback, silk_work_t** work, bool async) {
  return Call("silk_allreduce_compressed: comm or work", comm, work, async, [&](silk::Communicator& c, bool group) {
    silk::AllreduceOptions o;
    o.input = sendbuf, o.output = recvbuf, o.count = count, o.type = Type(type), o.op = Op(op), o.may_overlap = group;
    o.wan_compression = static_cast<silk::Compression>(compression);
    o.error_feedback = feedback != nullptr ? &feedback->state : nullptr;
    return silk::AllreduceAsync(c, o);
  });
}
silk_result_t silk_allreduce_compressed(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                        silk_datatype_t type, silk_redop_t op, silk_wan_compression_t compression,
                                        silk_error_feedback_t* feedback) {
  return CompressedImpl(comm, sendbuf, recvbuf, count, type, op, compression, feedback, nullptr, false);
}
silk_result_t silk_allreduce_compressed_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                              silk_datatype_t type, silk_redop_t op,
                                              silk_wan_compression_t compression, silk_error_feedback_t* feedback,
                                              silk_work_t** work) {
  return CompressedImpl(comm, sendbuf, recvbuf, count, type, op, compression, feedback, work, true);
}

static silk_result_t BroadcastImpl(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, int root, silk_work_t** work, bool async) {
  return Call("silk_broadcast: comm or work", comm, work, async, [&](silk::Communicator& c, bool group) {
    silk::BroadcastOptions o;
    o.input = sendbuf, o.output = recvbuf, o.count = count, o.type = Type(type), o.root = root, o.may_overlap = group;
    return silk::BroadcastAsync(c, o);
  });
}
silk_result_t silk_broadcast(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                             silk_datatype_t type, int root) {
  return BroadcastImpl(comm, sendbuf, recvbuf, count, type, root, nullptr, false);
}
silk_result_t silk_broadcast_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, int root, silk_work_t** work) {
  return BroadcastImpl(comm, sendbuf, recvbuf, count, type, root, work, true);
}

static silk_result_t ReduceImpl(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                silk_datatype_t type, silk_redop_t op, int root, silk_work_t** work, bool async) {
  return Call("silk_reduce: comm or work", comm, work, async, [&](silk::Communicator& c, bool group) {
    silk::ReduceOptions o;
    o.input = sendbuf, o.output = recvbuf, o.count = count, o.type = Type(type), o.op = Op(op), o.root = root;
    o.may_overlap = group;
    return silk::ReduceAsync(c, o);
  });
}
silk_result_t silk_reduce(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                          silk_datatype_t type, silk_redop_t op, int root) {
  return ReduceImpl(comm, sendbuf, recvbuf, count, type, op, root, nullptr, false);
}
silk_result_t silk_reduce_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                silk_datatype_t type, silk_redop_t op, int root, silk_work_t** work) {
  return ReduceImpl(comm, sendbuf, recvbuf, count, type, op, root, work, true);
}

static silk_result_t AllgatherImpl(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t sendcount,
                                   silk_datatype_t type, silk_work_t** work, bool async) {
  return Call("silk_allgather: comm or work", comm, work, async, [&](silk::Communicator& c, bool group) {
    silk::AllgatherOptions o;
    o.input = sendbuf, o.output = recvbuf, o.count = sendcount, o.type = Type(type), o.may_overlap = group;
    return silk::AllgatherAsync(c, o);
  });
}
silk_result_t silk_allgather(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t sendcount,
                             silk_datatype_t type) {
  return AllgatherImpl(comm, sendbuf, recvbuf, sendcount, type, nullptr, false);
}
silk_result_t silk_allgather_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t sendcount,
                                   silk_datatype_t type, silk_work_t** work) {
  return AllgatherImpl(comm, sendbuf, recvbuf, sendcount, type, work, true);
}

static silk_result_t ReduceScatterImpl(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t recvcount,
                                       silk_datatype_t type, silk_redop_t op, silk_work_t** work, bool async) {
  return Call("silk_reduce_scatter: comm or work", comm, work, async, [&](silk::Communicator& c, bool group) {
    silk::ReduceScatterOptions o;
    o.input = sendbuf, o.output = recvbuf, o.count = recvcount, o.type = Type(type), o.op = Op(op);
    o.may_overlap = group;
    return silk::ReduceScatterAsync(c, o);
  });
}
silk_result_t silk_reduce_scatter(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t recvcount,
                                  silk_datatype_t type, silk_redop_t op) {
  return ReduceScatterImpl(comm, sendbuf, recvbuf, recvcount, type, op, nullptr, false);
}
silk_result_t silk_reduce_scatter_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t recvcount,
                                        silk_datatype_t type, silk_redop_t op, silk_work_t** work) {
  return ReduceScatterImpl(comm, sendbuf, recvbuf, recvcount, type, op, work, true);
}

static silk_result_t AlltoallImpl(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                  silk_datatype_t type, silk_work_t** work, bool async) {
  return Call("silk_alltoall: comm or work", comm, work, async, [&](silk::Communicator& c, bool group) {
    silk::AlltoallOptions o;
    o.input = sendbuf, o.output = recvbuf, o.count = count, o.type = Type(type), o.may_overlap = group;
    return silk::AlltoallAsync(c, o);
  });
}
silk_result_t silk_alltoall(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                            silk_datatype_t type) {
  return AlltoallImpl(comm, sendbuf, recvbuf, count, type, nullptr, false);
}
silk_result_t silk_alltoall_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                  silk_datatype_t type, silk_work_t** work) {
  return AlltoallImpl(comm, sendbuf, recvbuf, count, type, work, true);
}

static silk_result_t BarrierImpl(silk_comm_t* comm, silk_work_t** work, bool async) {
  return Call("silk_barrier: comm or work", comm, work, async,
              [&](silk::Communicator& c, bool) { return silk::BarrierAsync(c); });
}
silk_result_t silk_barrier(silk_comm_t* comm) { return BarrierImpl(comm, nullptr, false); }
silk_result_t silk_barrier_async(silk_comm_t* comm, silk_work_t** work) { return BarrierImpl(comm, work, true); }

static silk_result_t SendImpl(silk_comm_t* comm, const void* sendbuf, size_t count, silk_datatype_t type, int peer,
                              int tag, silk_work_t** work, bool async) {
  return Call("silk_send: comm or work", comm, work, async, [&](silk::Communicator& c, bool) {
    silk::SendOptions o;
    o.data = sendbuf, o.count = count, o.type = Type(type), o.peer = peer, o.tag = tag;
    return silk::SendAsync(c, o);
  });
}
silk_result_t silk_send(silk_comm_t* comm, const void* sendbuf, size_t count, silk_datatype_t type, int peer,
                        int tag) {
  return SendImpl(comm, sendbuf, count, type, peer, tag, nullptr, false);
}
silk_result_t silk_send_async(silk_comm_t* comm, const void* sendbuf, size_t count, silk_datatype_t type, int peer,
                              int tag, silk_work_t** work) {
  return SendImpl(comm, sendbuf, count, type, peer, tag, work, true);
}

static silk_result_t RecvImpl(silk_comm_t* comm, void* recvbuf, size_t count, silk_datatype_t type, int peer,
                              int tag, silk_work_t** work, bool async) {
  return Call("silk_recv: comm or work", comm, work, async, [&](silk::Communicator& c, bool) {
    silk::RecvOptions o;
    o.data = recvbuf, o.count = count, o.type = Type(type), o.peer = peer, o.tag = tag;
    return silk::RecvAsync(c, o);
  });
}
silk_result_t silk_recv(silk_comm_t* comm, void* recvbuf, size_t count, silk_datatype_t type, int peer, int tag) {
  return RecvImpl(comm, recvbuf, count, type, peer, tag, nullptr, false);
}
silk_result_t silk_recv_async(silk_comm_t* comm, void* recvbuf, size_t count, silk_datatype_t type, int peer,
                              int tag, silk_work_t** work) {
  return RecvImpl(comm, recvbuf, count, type, peer, tag, work, true);
}

}  // extern "C"
