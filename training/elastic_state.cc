#include "training/elastic_state.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "collectives/collectives.h"
#include "collectives/point_to_point.h"
#include "runtime/core/error.h"
#include "runtime/core/status_macros.h"

namespace silk::training {
namespace {

constexpr int kStateTag = 0x51a7e;  // below kMaxTag; the sync is the only user of the new epoch then

struct Holding {
  int64_t step;
  uint64_t digest;
  uint64_t bytes;
};

}  // namespace

uint64_t StateDigest(const std::vector<StateBlock>& blocks) {
  // FNV-1a over 8-byte words, then a final mix: fast enough for gigabytes.
  uint64_t h = 0xcbf29ce484222325ull;
  for (const StateBlock& b : blocks) {
    const auto* p = static_cast<const unsigned char*>(b.data);
    size_t i = 0;
    for (; i + 8 <= b.bytes; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0x100000001b3ull;
    }
    for (; i < b.bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    h = (h ^ b.bytes) * 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

absl::StatusOr<StateSyncReport> SyncState(Communicator& comm, int64_t* step, const std::vector<StateBlock>& blocks) {
  const absl::Time start = absl::Now();
  const int n = comm.size(), me = comm.rank();
  uint64_t total = 0;
  for (const StateBlock& b : blocks) total += b.bytes;
  Holding mine{*step, *step >= 0 ? StateDigest(blocks) : 0, total};
  std::vector<Holding> all(n);
  AllgatherOptions gather;
  gather.input = &mine;
  gather.output = all.data();
  gather.count = sizeof(Holding);
  gather.type = DataType::kUint8;
  SILK_RETURN_IF_ERROR(Allgather(comm, gather));

  int winner = -1;
  for (int r = 0; r < n; ++r) {
    if (all[r].bytes != total) {
      return InvalidArgument(absl::StrFormat("state sync: rank %d holds %d bytes of state, rank %d %d", r,
                                             all[r].bytes, me, total));
    }
    if (all[r].step >= 0 && (winner < 0 || all[r].step > all[winner].step)) winner = r;
  }
  if (winner < 0) return absl::FailedPreconditionError("state sync: no rank holds any training state");
  auto holds = [&](int r) { return all[r].step == all[winner].step && all[r].digest == all[winner].digest; };
  // Each rank without the state takes it from the first holder of its region, else the first holder.
  std::vector<int> source(n, -1);
  StateSyncReport report;
  for (int r = 0; r < n; ++r) {
    report.holders += holds(r) ? 1 : 0;
    if (holds(r)) continue;
    for (int h = 0; h < n && source[r] < 0; ++h) {
      if (holds(h) && comm.placements()[h].region == comm.placements()[r].region) source[r] = h;
    }
    for (int h = 0; h < n && source[r] < 0; ++h) {
      if (holds(h)) source[r] = h;
    }
  }
  PointToPointBatch batch;
  for (int r = 0; r < n; ++r) {
    if (source[r] != me && r != me) continue;
    if (source[r] < 0) continue;
    for (const StateBlock& b : blocks) {
      if (b.bytes == 0) continue;
      if (r == me) {
        batch.recvs.push_back(RecvOptions{b.data, b.bytes, DataType::kUint8, source[r], kStateTag});
      } else {
        batch.sends.push_back(SendOptions{b.data, b.bytes, DataType::kUint8, r, kStateTag});
      }
    }
  }
  if (!batch.sends.empty() || !batch.recvs.empty()) {
    absl::StatusOr<WorkPtr> work = SendRecvAsync(comm, batch);
    absl::Status done = work.ok() ? (*work)->Wait() : work.status();
    if (!done.ok()) {
      // Half a state is none: this rank must not win a later sync with it.
      if (source[me] >= 0) *step = -1;
      return done;
    }
  }
  report.step = all[winner].step;
  report.digest = all[winner].digest;
  if (source[me] >= 0) {
    report.source = source[me];
    report.bytes_received = total;
    if (StateDigest(blocks) != report.digest) {
      *step = -1;
      return ProtocolError(absl::StrFormat("state sync: the state received from rank %d does not match its digest",
                                           source[me]));
    }
  }
  *step = report.step;
  report.took = absl::Now() - start;
  return report;
}

}  // namespace silk::training
