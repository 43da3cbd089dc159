// The C API over the C++ one: handles wrap C++ objects, absl::Status becomes
// a silk_result_t plus a thread-local message. Start-up, communicator, work,
// groups and errors here; the collectives and point-to-point calls are in
// silk_c_collectives.cc.
#include "collectives/c_api/silk.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "collectives/c_api/silk_c_internal.h"
#include "collectives/c_api/unique_id.h"
#include "collectives/collectives.h"
#include "collectives/launch.h"
#include "collectives/split.h"
#include "runtime/core/error.h"
#include "runtime/communicator.h"

namespace silk::c_api {
namespace {

thread_local std::string last_error;
thread_local int group_depth = 0;
thread_local std::vector<silk::WorkPtr> group_works;  // blocking calls issued in the group

}  // namespace

silk_result_t NullArgument(const char* what) {
  return Report(absl::InvalidArgumentError(absl::StrFormat("%s is null", what)));
}

bool InGroup() { return group_depth > 0; }

void DeferToGroupEnd(silk::WorkPtr work) { group_works.push_back(std::move(work)); }

silk_result_t Finish(absl::StatusOr<silk::WorkPtr> started, silk_work_t** out) {
  if (!started.ok()) return Report(started.status());
  if (out != nullptr) {
    *out = new silk_work{std::move(*started)};
    return SILK_SUCCESS;
  }
  if (InGroup()) {
    DeferToGroupEnd(std::move(*started));
    return SILK_SUCCESS;
  }
  return Report(silk::WaitFor(started));  // a blocking call may have run already (launch.h)
}

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

}  // namespace silk::c_api

namespace {

using silk::c_api::NullArgument;
using silk::c_api::Report;

template <typename Create>
silk_result_t Init(silk_comm_t** out, Create create) {
  if (out == nullptr) return Report(absl::InvalidArgumentError("silk_init: comm pointer is null"));
  *out = nullptr;
  auto comm = create();
  if (!comm.ok()) return Report(comm.status());
  *out = new silk_comm{std::move(*comm)};
  return SILK_SUCCESS;
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

void silk_comm_abort_local(silk_comm_t* comm) {
  if (comm == nullptr) return;
  comm->comm->Abort(absl::AbortedError(
      absl::StrFormat("rank %d aborted its communicator (silk_comm_abort_local)", comm->comm->rank())));
  delete comm;  // queued operations fail at once now: nothing is left to finish
}

silk_result_t silk_comm_get_async_error(const silk_comm_t* comm, silk_result_t* async_error) {
  if (comm == nullptr || async_error == nullptr) return NullArgument("silk_comm_get_async_error: comm or async_error");
  *async_error = Report(comm->comm->status());
  return SILK_SUCCESS;
}

silk_result_t silk_comm_stats(const silk_comm_t* comm, silk_stats_t* stats) {
  if (comm == nullptr || stats == nullptr) return NullArgument("silk_comm_stats: comm or stats");
  const silk::CommStats s = comm->comm->Stats();
  *stats = silk_stats_t{s.node.bytes_sent,   s.node.bytes_received, s.region.bytes_sent, s.region.bytes_received,
                        s.wan.bytes_sent,    s.wan.bytes_received,  s.collectives,       s.point_to_point,
                        s.failed,            absl::ToDoubleSeconds(s.collective_time),
                        absl::ToDoubleSeconds(s.point_to_point_time)};
  return SILK_SUCCESS;
}

silk_result_t silk_get_version(int* version) {
  if (version == nullptr) return NullArgument("silk_get_version: version");
  *version = SILK_VERSION_CODE;
  return SILK_SUCCESS;
}

silk_result_t silk_get_unique_id(silk_unique_id_t* id) {
  if (id == nullptr) return NullArgument("silk_get_unique_id: id");
  auto config = silk::Config::FromEnvironment();
  if (!config.ok()) return Report(config.status());
  auto text = silk::c_api::NewUniqueId(config->socket_ifname, sizeof(id->internal));
  if (!text.ok()) return Report(text.status());
  std::memset(id->internal, 0, sizeof(id->internal));
  std::memcpy(id->internal, text->data(), text->size());
  return SILK_SUCCESS;
}

silk_result_t silk_comm_init_rank(silk_comm_t** comm, int nranks, silk_unique_id_t id, int rank) {
  return Init(comm, [&]() -> absl::StatusOr<std::unique_ptr<silk::Communicator>> {
    auto config = silk::Config::FromEnvironment();
    if (!config.ok()) return config.status();
    const std::string text(id.internal, strnlen(id.internal, sizeof(id.internal)));
    auto bootstrap = silk::c_api::UniqueIdBootstrap(text, rank, nranks, config->StartupTimeout());
    if (!bootstrap.ok()) return bootstrap.status();
    return silk::Communicator::Create(*std::move(bootstrap), *config);
  });
}

silk_result_t silk_comm_split(silk_comm_t* comm, int color, int key, silk_comm_t** newcomm) {
  if (comm == nullptr || newcomm == nullptr) return NullArgument("silk_comm_split: comm or newcomm");
  *newcomm = nullptr;
  auto child = silk::Split(*comm->comm, color, key);
  if (!child.ok()) return Report(child.status());
  if (*child != nullptr) *newcomm = new silk_comm{*std::move(child)};
  return SILK_SUCCESS;
}

silk_result_t silk_group_start(void) {
  silk::c_api::group_depth++;
  return SILK_SUCCESS;
}

silk_result_t silk_group_end(void) {
  using silk::c_api::group_depth;
  if (group_depth == 0) return Report(absl::InvalidArgumentError("silk_group_end without silk_group_start"));
  if (--group_depth > 0) return SILK_SUCCESS;
  std::vector<silk::WorkPtr> works;
  works.swap(silk::c_api::group_works);
  absl::Status first;
  for (const silk::WorkPtr& work : works) first.Update(work->Wait());
  return Report(first);
}

silk_result_t silk_work_wait(silk_work_t* work, double timeout_seconds) {
  if (work == nullptr) return Report(absl::InvalidArgumentError("silk_work_wait: work is null"));
  return Report(work->work->Wait(timeout_seconds < 0 ? absl::InfiniteDuration() : absl::Seconds(timeout_seconds)));
}

int silk_work_test(const silk_work_t* work) { return work != nullptr && work->work->Test() ? 1 : 0; }

void silk_work_free(silk_work_t* work) { delete work; }

const char* silk_last_error(void) { return silk::c_api::last_error.c_str(); }

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
