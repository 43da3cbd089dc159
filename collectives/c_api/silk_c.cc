// The C API over the C++ one: handles wrap C++ objects, absl::Status becomes
// a silk_result_t plus a thread-local message.
#include "collectives/c_api/silk.h"

#include <memory>
#include <string>

#include "collectives/collectives.h"
#include "runtime/core/error.h"
#include "runtime/communicator.h"

struct silk_comm {
  std::unique_ptr<silk::Communicator> comm;
};

struct silk_work {
  silk::WorkPtr work;
};

namespace {

thread_local std::string last_error;

silk_result_t Report(const absl::Status& status) {
  if (status.ok()) return SILK_SUCCESS;
  last_error = std::string(status.message());
  switch (silk::KindOf(status)) {
    case silk::ErrorKind::kNone:
      return SILK_SUCCESS;
    case silk::ErrorKind::kInvalidArgument:
      return SILK_ERROR_INVALID_ARGUMENT;
    case silk::ErrorKind::kTimeout:
      return SILK_ERROR_TIMEOUT;
    case silk::ErrorKind::kMismatch:
      return SILK_ERROR_MISMATCH;
    case silk::ErrorKind::kPeerLost:
    case silk::ErrorKind::kProtocol:
      return SILK_ERROR_NETWORK;
    case silk::ErrorKind::kAborted:
      return SILK_ERROR_ABORTED;
    case silk::ErrorKind::kInternal:
      return SILK_ERROR_INTERNAL;
  }
  return SILK_ERROR_INTERNAL;
}

template <typename Create>
silk_result_t Init(silk_comm_t** out, Create create) {
  if (out == nullptr) return Report(absl::InvalidArgumentError("silk_init: comm pointer is null"));
  *out = nullptr;
  auto comm = create();
  if (!comm.ok()) return Report(comm.status());
  *out = new silk_comm{std::move(*comm)};
  return SILK_SUCCESS;
}

silk::AllreduceOptions AllreduceArgs(const void* sendbuf, void* recvbuf, size_t count, silk_datatype_t type,
                                     silk_redop_t op) {
  silk::AllreduceOptions options;
  options.input = sendbuf;
  options.output = recvbuf;
  options.count = count;
  options.type = static_cast<silk::DataType>(type);
  options.op = static_cast<silk::ReduceOp>(op);
  return options;
}

}  // namespace

extern "C" {

silk_result_t silk_init(silk_comm_t** comm) { return Init(comm, [] { return silk::Communicator::CreateDefault(); }); }

silk_result_t silk_init_from_mpi(silk_comm_t** comm) {
  return Init(comm, []() -> absl::StatusOr<std::unique_ptr<silk::Communicator>> {
    auto config = silk::Config::FromEnvironment();
    if (!config.ok()) return config.status();
    return silk::Communicator::CreateFromMpi(*config);
  });
}

silk_result_t silk_init_from_env(silk_comm_t** comm) {
  return Init(comm, []() -> absl::StatusOr<std::unique_ptr<silk::Communicator>> {
    auto config = silk::Config::FromEnvironment();
    if (!config.ok()) return config.status();
    return silk::Communicator::CreateFromEnvironment(*config);
  });
}

void silk_finalize(silk_comm_t* comm) { delete comm; }

int silk_comm_rank(const silk_comm_t* comm) { return comm ? comm->comm->rank() : -1; }
int silk_comm_size(const silk_comm_t* comm) { return comm ? comm->comm->size() : -1; }
int silk_comm_local_rank(const silk_comm_t* comm) { return comm ? comm->comm->local_rank() : -1; }

silk_result_t silk_comm_status(const silk_comm_t* comm) {
  if (comm == nullptr) return Report(absl::InvalidArgumentError("silk_comm_status: comm is null"));
  return Report(comm->comm->status());
}

void silk_comm_abort(silk_comm_t* comm, const char* reason) {
  if (comm != nullptr) comm->comm->Abort(absl::AbortedError(reason ? reason : "aborted through the C API"));
}

silk_result_t silk_allreduce(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                             silk_datatype_t type, silk_redop_t op) {
  if (comm == nullptr) return Report(absl::InvalidArgumentError("silk_allreduce: comm is null"));
  return Report(silk::Allreduce(*comm->comm, AllreduceArgs(sendbuf, recvbuf, count, type, op)));
}

silk_result_t silk_allreduce_async(silk_comm_t* comm, const void* sendbuf, void* recvbuf, size_t count,
                                   silk_datatype_t type, silk_redop_t op, silk_work_t** work) {
  if (comm == nullptr || work == nullptr) {
    return Report(absl::InvalidArgumentError("silk_allreduce_async: comm or work pointer is null"));
  }
  *work = nullptr;
  auto started = silk::AllreduceAsync(*comm->comm, AllreduceArgs(sendbuf, recvbuf, count, type, op));
  if (!started.ok()) return Report(started.status());
  *work = new silk_work{std::move(*started)};
  return SILK_SUCCESS;
}

silk_result_t silk_work_wait(silk_work_t* work, double timeout_seconds) {
  if (work == nullptr) return Report(absl::InvalidArgumentError("silk_work_wait: work is null"));
  return Report(work->work->Wait(timeout_seconds < 0 ? absl::InfiniteDuration() : absl::Seconds(timeout_seconds)));
}

int silk_work_test(const silk_work_t* work) { return work != nullptr && work->work->Test() ? 1 : 0; }

void silk_work_free(silk_work_t* work) { delete work; }

const char* silk_last_error(void) { return last_error.c_str(); }

const char* silk_result_string(silk_result_t result) {
  switch (result) {
    case SILK_SUCCESS: return "success";
    case SILK_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case SILK_ERROR_TIMEOUT: return "timeout";
    case SILK_ERROR_MISMATCH: return "mismatched collective calls";
    case SILK_ERROR_NETWORK: return "network failure";
    case SILK_ERROR_ABORTED: return "aborted";
    case SILK_ERROR_INTERNAL: return "internal error";
  }
  return "unknown result";
}

}  // extern "C"
