// Communicator::CreateChild: a split communicator over its root's connections.
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "runtime/child_transport.h"
#include "runtime/communicator.h"
#include "runtime/core/cluster_spec.h"
#include "runtime/core/log.h"

namespace silk {
namespace {

// Regions in order of first appearance (the communicator's region numbering).
std::vector<std::string> RegionOrder(const std::vector<RankPlacement>& placements) {
  std::vector<std::string> regions;
  for (const RankPlacement& p : placements) {
    if (std::find(regions.begin(), regions.end(), p.region) == regions.end()) regions.push_back(p.region);
  }
  return regions;
}

}  // namespace

uint32_t Communicator::next_child_id() const {
  absl::MutexLock lock(&child_ids_->mu);
  return child_ids_->next;
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateChild(const std::vector<int>& members, uint32_t id,
                                                                        absl::Duration timeout) const {
  std::vector<bool> seen(size(), false);
  int child_rank = -1;
  for (int i = 0; i < static_cast<int>(members.size()); ++i) {
    const int m = members[i];
    if (m < 0 || m >= size() || seen[m]) {
      return absl::InvalidArgumentError(absl::StrFormat("split: member %d is not a rank or is listed twice", m));
    }
    seen[m] = true;
    if (m == rank_) child_rank = i;
  }
  if (child_rank < 0) return absl::InvalidArgumentError(absl::StrFormat("split: rank %d is not a member", rank_));
  if (id == 0 || id > kMaxChildId) {
    return absl::InvalidArgumentError(absl::StrFormat("split: id %d is outside 1..%d", id, kMaxChildId));
  }
  {
    absl::MutexLock lock(&child_ids_->mu);
    if (id < child_ids_->next) {
      return absl::InvalidArgumentError(
          absl::StrFormat("split: id %d was already used on rank %d (next free: %d)", id, rank_, child_ids_->next));
    }
    child_ids_->next = id + 1;
  }
  std::unique_ptr<Communicator> child(new Communicator());
  child->config_ = config_;
  if (timeout > absl::ZeroDuration()) child->config_.timeout = timeout;
  child->rank_ = child_rank;
  child->job_id_ = job_id_ ^ (static_cast<uint64_t>(id) << kChildIdShift);
  std::vector<int> root_members;
  for (int i = 0; i < static_cast<int>(members.size()); ++i) {
    RankPlacement p = placements_[members[i]];
    p.rank = i;
    p.local_rank = 0;
    for (int q = 0; q < i; ++q) p.local_rank += child->placements_[q].node == p.node ? 1 : 0;
    child->placements_.push_back(p);
    root_members.push_back(root_ranks_[members[i]]);
  }
  const std::vector<std::string> regions = RegionOrder(child->placements_);
  child->num_regions_ = static_cast<int>(regions.size());
  if (spec_ != nullptr) child->spec_ = std::make_unique<cluster::ClusterSpec>(*spec_);
  // The tiers hold WAN costs in region order: kept where that order is the same.
  if (regions == RegionOrder(placements_)) child->tiers_ = tiers_;
  child->root_transport_ = root_transport_;
  child->root_ranks_ = root_members;
  child->child_ids_ = child_ids_;
  child->transport_ = std::make_shared<ChildTransport>(root_transport_, std::move(root_members), child_rank, id);
  child->engine_ = std::make_unique<Engine>(child->transport_.get(), child_rank, child->config_.engine_streams);
  if (!config_.trace_path.empty()) {  // each split communicator its own file: "<path>.split<id>"
    child->engine_->EnableTrace(absl::StrFormat("%s.split%d", config_.trace_path, id), rank_,
                                child->TiersByRootRank());
  }
  Log(LogLevel::kInfo, "rank %d: split communicator #%d, rank %d of %d, over the existing connections", rank_, id,
      child_rank, child->size());
  return child;
}

}  // namespace silk
