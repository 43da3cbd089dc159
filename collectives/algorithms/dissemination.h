// Dissemination barrier (Hensgen, Finkel, Manber): in round k every rank
// signals rank + 2^k and waits for rank - 2^k. After ceil(log2 n) rounds each
// rank has heard, directly or through others, that every rank has arrived.
#pragma once

#include "absl/status/status.h"
#include "runtime/engine/engine.h"

namespace silk::algorithms {

absl::Status DisseminationBarrier(OpContext& ctx);

}  // namespace silk::algorithms
