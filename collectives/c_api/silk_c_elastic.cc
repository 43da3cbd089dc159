// The C API's elastic calls (silk.h, "Elastic jobs"): Communicator::Reconfigure and its queries.
#include "collectives/c_api/silk.h"
#include "collectives/c_api/silk_c_internal.h"
#include "runtime/core/error.h"

using silk::c_api::NullArgument;
using silk::c_api::Report;

silk_result_t silk_comm_reconfigure(silk_comm_t* comm, int64_t admit_up_to, silk_membership_change_t* change) {
  if (comm == nullptr) return NullArgument("silk_comm_reconfigure: comm");
  if (!comm->comm->elastic()) {
    return Report(silk::InvalidArgument(
        "silk_comm_reconfigure: not an elastic launch (SILK_ELASTIC=1 with a silk-coordinator; docs/reliability.md)"));
  }
  absl::StatusOr<silk::Communicator::Reconfiguration> r = comm->comm->Reconfigure(admit_up_to);
  if (!r.ok()) return Report(r.status());
  if (change != nullptr) {
    change->epoch = r->epoch;
    change->lost = static_cast<int>(r->lost.size());
    change->joined = static_cast<int>(r->joined.size());
    change->rejoined = r->rejoined ? 1 : 0;
    change->seconds = absl::ToDoubleSeconds(r->took);
  }
  return SILK_SUCCESS;
}

silk_result_t silk_comm_shrink(silk_comm_t* comm, silk_membership_change_t* change) {
  return silk_comm_reconfigure(comm, -1, change);
}

int silk_comm_member(const silk_comm_t* comm) { return comm ? comm->comm->member() : -1; }
uint64_t silk_comm_epoch(const silk_comm_t* comm) { return comm ? comm->comm->epoch() : 0; }
int64_t silk_comm_join_requests(const silk_comm_t* comm) { return comm ? comm->comm->JoinRequests() : 0; }
int64_t silk_comm_answered_join_requests(const silk_comm_t* comm) {
  return comm ? comm->comm->AnsweredJoinRequests() : 0;
}
