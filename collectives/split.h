// Split (ncclCommSplit, MPI_Comm_split): every rank of `comm` calls it, in its
// sequence of collectives; the ranks with one color form a new communicator,
// ordered by key (ties by rank in `comm`). It reuses `comm`'s connections:
// one all-gather of (color, key) over `comm`, no new handshake, and ranks keep
// their node and region, so region-aware algorithms still apply. A rank with
// kSplitNoColor (any negative color) gets nullptr.
//
// The new communicator runs its own collectives, in its own order, beside
// `comm`'s; both may be used at once. It shares `comm`'s connections and so its
// fate: a failure in one (a timeout, a mismatch, a lost peer) fails the other.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/communicator.h"

namespace silk {

inline constexpr int kSplitNoColor = -1;

absl::StatusOr<std::unique_ptr<Communicator>> Split(Communicator& comm, int color, int key,
                                                    absl::Duration timeout = absl::ZeroDuration());

}  // namespace silk
