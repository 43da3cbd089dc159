// Making the training state equal on every rank after the membership changed
// (Communicator::Reconfigure): a restarted rank has none, and a rank lost in
// the middle of a step may have left some survivors one step ahead of others.
//
// Every rank describes what it holds (its step counter and a digest of its
// state); the state of the highest step wins (the lowest rank's, among ranks
// at that step whose digests differ), and each rank that lacks it receives it
// from a holder in its own region if there is one, else across the WAN. Ranks
// that hold it already move nothing, so after a shrink in which every
// survivor was at the same step nothing is sent at all. A step completed by
// any survivor is so kept, never repeated; a step no survivor completed is
// run again by all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/communicator.h"

namespace silk::training {

// One piece of the state (parameters, optimiser moments, a policy's anchor):
// every rank passes the same pieces, in the same order, of the same sizes.
struct StateBlock {
  void* data = nullptr;
  size_t bytes = 0;
};

struct StateSyncReport {
  int64_t step = 0;         // the step every rank now holds
  int source = -1;          // the rank this one received from; -1: it held the state
  int holders = 0;          // ranks that held the winning state before
  uint64_t bytes_received = 0;
  uint64_t digest = 0;      // of the state every rank now holds
  absl::Duration took;
};

// Collective over `comm`. `step` is this rank's step counter (-1: it holds no
// state, as a process just restarted); on return every rank's step and blocks
// are the winner's. Fails if no rank holds state or the pieces differ in size;
// a rank whose transfer failed is left holding nothing (`step` -1).
absl::StatusOr<StateSyncReport> SyncState(Communicator& comm, int64_t* step, const std::vector<StateBlock>& blocks);

// A 64-bit digest of the blocks' bytes (the same on every machine).
uint64_t StateDigest(const std::vector<StateBlock>& blocks);

}  // namespace silk::training
