// What the C API's files share: the handles behind silk.h's opaque types and
// the conversion of absl::Status into a silk_result_t.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collectives/c_api/silk.h"
#include "runtime/communicator.h"
#include "runtime/engine/work.h"

struct silk_comm {
  std::unique_ptr<silk::Communicator> comm;
};

struct silk_work {
  silk::WorkPtr work;
};

namespace silk::c_api {

// SILK_SUCCESS, or the error's code with its message kept for silk_last_error().
silk_result_t Report(const absl::Status& status);
silk_result_t NullArgument(const char* what);

// Between silk_group_start and silk_group_end on this thread (silk.h).
bool InGroup();
// Keeps a blocking call's work, issued inside a group, for silk_group_end.
void DeferToGroupEnd(silk::WorkPtr work);

// The end of a call that started `started`: an _async call hands the work to
// `*out`; a blocking one waits, or inside a group defers the wait.
silk_result_t Finish(absl::StatusOr<silk::WorkPtr> started, silk_work_t** out);

}  // namespace silk::c_api
