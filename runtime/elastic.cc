// Communicator's elastic side: creating a communicator for a membership epoch
// and moving this object to the next epoch in place (runtime/membership.h).
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/bootstrap/store_bootstrap.h"
#include "runtime/communicator.h"
#include "runtime/core/cluster_spec.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"
#include "runtime/membership.h"

namespace silk {
namespace {

// A new epoch's start-up has a short deadline of its own: its members were
// alive a moment ago, and one that died meanwhile should cost a retry, not
// the whole start-up timeout.
constexpr absl::Duration kEpochStartup = absl::Seconds(30);
constexpr int kAttempts = 4;

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateForEpoch(Membership& membership,
                                                                           const MembershipView& view,
                                                                           const Config& config) {
  Config epoch_config = config;
  if (view.epoch > 1) epoch_config.startup_timeout = std::min(config.StartupTimeout(), kEpochStartup);
  auto bootstrap = std::make_unique<bootstrap::StoreBootstrap>(membership.store(), view.rank, view.size(),
                                                               Membership::BootstrapPrefix(view.epoch));
  // The links do not change with the membership: measure them once per set of regions.
  std::shared_ptr<bootstrap::Store> store = membership.store();
  TierMemory memory;
  memory.find = [store](const std::string& regions) -> std::optional<Tiers> {
    absl::StatusOr<std::string> kept = store->Get(Membership::TiersKey(regions), absl::ZeroDuration());
    if (!kept.ok()) return std::nullopt;
    absl::StatusOr<Tiers> tiers = DecodeTiers(*kept);
    return tiers.ok() ? std::optional<Tiers>(*std::move(tiers)) : std::nullopt;
  };
  memory.keep = [store](const std::string& regions, const Tiers& tiers) {
    store->Set(Membership::TiersKey(regions), EncodeTiers(tiers)).IgnoreError();  // a later membership measures again
  };
  return Create(std::move(bootstrap), epoch_config, &memory);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateElastic(const Config& config) {
  SILK_ASSIGN_OR_RETURN(std::unique_ptr<Membership> membership, Membership::Connect(config));
  const absl::Time deadline = absl::Now() + std::max(config.StartupTimeout(), config.elastic_rejoin_timeout);
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts && absl::Now() < deadline; ++attempt) {
    SILK_ASSIGN_OR_RETURN(MembershipView view, membership->Enter(deadline - absl::Now()));
    absl::StatusOr<std::unique_ptr<Communicator>> comm = CreateForEpoch(*membership, view, config);
    if (comm.ok()) {
      Log(LogLevel::kInfo, "member %d: rank %d of %d in epoch %d", membership->member(), view.rank, view.size(),
          view.epoch);
      (*comm)->view_ = std::make_unique<MembershipView>(std::move(view));
      (*comm)->membership_ = std::move(membership);
      return comm;
    }
    last = comm.status();
    Log(LogLevel::kWarning, "member %d: epoch %d did not start (%s); asking again", membership->member(), view.epoch,
        last.message());
  }
  return Prefixed(last, "elastic start-up: ");
}

void Communicator::Adopt(Communicator& fresh) {
  engine_.reset();  // before the transport it drives
  transport_.reset();
  root_transport_.reset();
  rank_ = fresh.rank_;
  job_id_ = fresh.job_id_;
  placements_ = std::move(fresh.placements_);
  num_regions_ = fresh.num_regions_;
  spec_ = std::move(fresh.spec_);
  tiers_ = std::move(fresh.tiers_);
  bootstrap_ = std::move(fresh.bootstrap_);
  transport_ = std::move(fresh.transport_);
  engine_ = std::move(fresh.engine_);
  root_transport_ = std::move(fresh.root_transport_);
  root_ranks_ = std::move(fresh.root_ranks_);
  child_ids_ = std::move(fresh.child_ids_);
  absl::MutexLock lock(&numbers_mu_);
  message_numbers_.clear();
}

absl::StatusOr<Communicator::Reconfiguration> Communicator::Reconfigure(int64_t admit_up_to) {
  if (membership_ == nullptr) {
    return absl::FailedPreconditionError(
        "Reconfigure needs an elastic launch (SILK_ELASTIC=1 with a silk-coordinator; docs/reliability.md): in "
        "this job a lost rank ends the job");
  }
  const absl::Time start = absl::Now();
  // The old membership's operations end now; its connections close when the
  // new ones replace them (until then a failed reconfiguration leaves a
  // communicator that fails every call, not a broken object). No byte of the
  // old can reach the new: each epoch has its own job id and token.
  // (A healthy communicator, admitting members at an agreed boundary, has
  // nothing in flight: it is closed quietly when the new one replaces it.)
  if (!status().ok()) engine_->Abort(AbortedError(absl::StrFormat("member %d: the membership is changing", member())));
  const MembershipView previous = *view_;
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    SILK_ASSIGN_OR_RETURN(MembershipView view, membership_->Next(*view_, admit_up_to));
    absl::StatusOr<std::unique_ptr<Communicator>> fresh = CreateForEpoch(*membership_, view, config_);
    if (fresh.ok()) {
      Adopt(**fresh);
      Reconfiguration out;
      out.epoch = view.epoch;
      // Against the membership before this call, across any retries.
      std::vector<int> before = previous.members;
      for (int m : view.members) {
        if (std::find(before.begin(), before.end(), m) == before.end()) out.joined.push_back(m);
      }
      for (int m : before) {
        if (std::find(view.members.begin(), view.members.end(), m) == view.members.end()) out.lost.push_back(m);
      }
      out.rejoined = view.rejoined;
      out.took = absl::Now() - start;
      *view_ = std::move(view);
      Log(LogLevel::kInfo, "member %d: epoch %d, rank %d of %d (lost %s; joined %s) in %s", member(), out.epoch, rank_,
          size(), absl::StrJoin(out.lost, ","), absl::StrJoin(out.joined, ","), absl::FormatDuration(out.took));
      return out;
    }
    last = fresh.status();
    Log(LogLevel::kWarning, "member %d: epoch %d did not start (%s); agreeing again", member(), view.epoch,
        last.message());
    *view_ = std::move(view);  // its survivors move to the next epoch together
    admit_up_to = -1;
  }
  return Prefixed(last, absl::StrFormat("member %d: reconfiguring after %d failed attempts: ", member(), kAttempts));
}

bool Communicator::elastic() const { return membership_ != nullptr; }
int Communicator::member() const { return membership_ ? membership_->member() : rank_; }
uint64_t Communicator::epoch() const { return view_ ? view_->epoch : 1; }

std::vector<int> Communicator::members() const {
  if (view_) return view_->members;
  std::vector<int> all(size());
  for (int r = 0; r < size(); ++r) all[r] = r;
  return all;
}

int64_t Communicator::JoinRequests() const { return membership_ ? membership_->join_requests_seen() : 0; }
absl::Status Communicator::MarkJobFinished() {
  return membership_ ? membership_->MarkJobFinished() : absl::OkStatus();
}
int64_t Communicator::AnsweredJoinRequests() const { return view_ ? view_->answered_requests : 0; }

}  // namespace silk
