// Bootstrap over any Store (Silk's TcpStore, or a framework's store behind the
// Store interface): each AllGather is one round of keys under
// "<prefix>/s<session>/<generation>/", so repeated AllGathers never see each
// other's values, and neither do successive initialisations on one store.
//
// Sessions: a store may outlive a group (PyTorch's destroy_process_group then
// init_process_group on one MASTER_PORT, an elastic launcher's restarts), and
// a rank may even reach the previous group's store before rank 0 replaces it.
// So rank 0 opens a new session for each bootstrap (a counter in the store);
// another rank joins the latest session unless it already took part in it
// (its own first record is there) or rank 0 closed it (rank 0 closes a
// session when its first exchange ends, done or given up), in which case it
// waits for the next one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/bootstrap/store.h"

namespace silk::bootstrap {

class StoreBootstrap : public Bootstrap {
 public:
  // `prefix` separates jobs or communicators sharing one store. Every rank must
  // use the same prefix and call AllGather the same number of times.
  StoreBootstrap(std::shared_ptr<Store> store, int rank, int size, std::string prefix);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Joins the session, sets this rank's key, then gets everyone's in one
  // request, all within `timeout`. Before
  // returning, rank 0 also waits (at most another `timeout`) until every rank
  // has confirmed it has the result: rank 0 usually hosts the store, and may
  // destroy it as soon as this returns. Timeouts name the missing ranks.
  absl::StatusOr<std::vector<std::string>> AllGather(const std::string& mine, absl::Duration timeout) override;
  std::string Describe() const override { return store_->Describe(); }

  // Joins this initialisation's session (see above), waiting at most `timeout`
  // for rank 0 to open it; AllGather calls it first if no one has. Unavailable
  // when the store went away meanwhile (the previous group's store closing).
  absl::Status JoinSession(absl::Duration timeout);
  // The session joined; -1 before.
  int64_t session() const;

 private:
  std::vector<std::string> Keys(int64_t session, int64_t generation, const char* kind) const;
  std::string ClosedKey(int64_t session) const;
  absl::StatusOr<std::vector<std::string>> AllGatherLocked(const std::string& mine, int64_t generation,
                                                           absl::Time deadline, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status JoinSessionLocked(absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits at most `wait` for all `keys` (one per rank); on timeout names the
  // ranks missing, e.g. "... timed out after <timeout> waiting for
  // <waiting_for>ranks 2, 3 of 4".
  absl::StatusOr<std::vector<std::string>> WaitForAll(const std::vector<std::string>& keys, absl::Duration wait,
                                                      absl::Duration timeout, const std::string& operation,
                                                      const char* waiting_for);

  const std::shared_ptr<Store> store_;
  const int rank_;
  const int size_;
  const std::string prefix_;
  mutable absl::Mutex mu_;  // one AllGather at a time, so generations stay in step across ranks
  int64_t session_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

// "2, 3, 7-9": sorted ranks, with runs shortened to ranges.
std::string FormatRanks(const std::vector<int>& ranks);

}  // namespace silk::bootstrap
