// Membership of an elastic job (SILK_ELASTIC=1): which processes form the
// communicator now, agreed through the job's coordinator (silk-coordinator, a
// store no rank hosts), so the job outlives any rank.
//
// Each process is a member with a fixed id (RANK at launch, kept across its
// restarts). Memberships are numbered epochs; epoch E lists its members in
// ascending id order, and rank r of the epoch's communicator is its r-th
// member. Moving from epoch E to E+1:
//   - every member still here registers for E+1; the first to register leads;
//   - the leader waits until each member of E, and each process whose join
//     request the members agreed to answer, has registered or has been silent
//     (no heartbeat to the coordinator) for SILK_ELASTIC_DEAD_AFTER; members
//     alive but slow are waited for;
//   - the leader writes the new list; everyone reads it. A member left out (it
//     was presumed lost) asks to join again.
// The coordinator is the only authority, so two sides of a partition never
// both go on: the side that cannot reach it cannot form an epoch, and waits to
// be admitted again (the split-brain rule, docs/reliability.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "runtime/bootstrap/store.h"
#include "runtime/core/config.h"

namespace silk {

struct MembershipView {
  uint64_t epoch = 0;
  std::vector<int> members;      // member ids, ascending: rank r is members[r]
  int64_t answered_requests = 0;  // join requests (tickets) this epoch has answered
  int rank = -1;                 // this process's rank in the epoch
  std::vector<int> lost, joined;  // against the previous epoch this process knew
  bool rejoined = false;          // admitted through a join request (restarted, or left out before)
  int size() const { return static_cast<int>(members.size()); }
};

class Membership {
 public:
  // Connects to the coordinator (MASTER_ADDR:MASTER_PORT) and starts the
  // heartbeat. `config.elastic` must be set.
  static absl::StatusOr<std::unique_ptr<Membership>> Connect(const Config& config);
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  int member() const { return member_; }
  // The first epoch (all WORLD_SIZE members) when the job is starting; when
  // it runs already (this process was restarted, or is new), a join request,
  // answered when the members next admit (at most `timeout`).
  absl::StatusOr<MembershipView> Enter(absl::Duration timeout);
  // The epoch after `current`: its members still here, and the processes
  // whose join requests up to ticket `admit_up_to` are alive (-1: none new).
  // If this process is left out, it asks to join again, for at most
  // SILK_ELASTIC_REJOIN_TIMEOUT, and the view says it joined.
  absl::StatusOr<MembershipView> Next(const MembershipView& current, int64_t admit_up_to);
  // Join requests made in this job so far (a counter at the coordinator, read
  // by the heartbeat): more than an epoch answered means processes wait.
  int64_t join_requests_seen() const { return requests_seen_.load(); }
  // Tells processes still waiting to be admitted that the job has ended (they
  // return instead of waiting out SILK_ELASTIC_REJOIN_TIMEOUT).
  absl::Status MarkJobFinished();
  // The coordinator, for the exchange of addresses inside an epoch.
  std::shared_ptr<bootstrap::Store> store() const { return store_; }
  // Keys under which epoch `epoch`'s ranks exchange their addresses.
  static std::string BootstrapPrefix(uint64_t epoch);
  // Key of the tier table kept for `regions` (region order, comma-separated).
  static std::string TiersKey(const std::string& regions);

 private:
  Membership(const Config& config, std::shared_ptr<bootstrap::Store> store,
             std::shared_ptr<bootstrap::Store> heartbeat_store);
  void Heartbeat();
  // Registers for `epoch`; the first to register leads and decides it.
  absl::StatusOr<MembershipView> Decide(uint64_t epoch, const MembershipView& current, int64_t admit_up_to,
                                        bool first);
  absl::Status Lead(uint64_t epoch, const MembershipView& current, int64_t admit_up_to, bool first);
  // Waits for epoch `epoch`'s list, at most `timeout`; a member of the
  // previous epoch (`may_take_over`) decides it itself if its leader goes silent.
  absl::StatusOr<MembershipView> Read(uint64_t epoch, const MembershipView& previous, absl::Duration timeout,
                                      bool may_take_over);
  bool LeaderSilent(uint64_t epoch, std::pair<std::string, absl::Time>* seen);
  // Asks to be admitted and waits for an epoch that lists this process.
  absl::StatusOr<MembershipView> Join(const MembershipView& previous, absl::Time deadline);

  const Config config_;
  const int member_;
  std::shared_ptr<bootstrap::Store> store_;            // this process's calls
  std::shared_ptr<bootstrap::Store> heartbeat_store_;  // the heartbeat thread's own connection
  std::atomic<int64_t> requests_seen_{0};
  absl::Notification stop_;
  std::thread heartbeat_;
};

}  // namespace silk
