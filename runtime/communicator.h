// A Communicator is one rank's membership in a job: who it is (rank, node,
// region), how to reach every peer (the transport), and the engine that runs
// its collectives in order. Collectives themselves live in collectives/.
#pragma once

#if defined(__cplusplus) && __cplusplus < 202002L
#error "Silk's C++ API needs C++20 (-std=c++20; CMake's Silk::silk asks for it). C code uses <silk/silk.h>."
#endif

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/core/config.h"
#include "runtime/engine/engine.h"
#include "runtime/rate_estimator.h"
#include "runtime/tiers.h"
#include "runtime/transport/transport.h"

namespace silk {
namespace cluster {
class ClusterSpec;
}
class RankInfo;
struct LocalStart;
class Membership;
struct MembershipView;

struct RankPlacement {
  int rank = 0;
  std::string node;
  std::string region;
  int local_rank = 0;  // index among the ranks on the same node
};

// What a communicator has done (Communicator::Stats).
struct CommStats {
  // Payload bytes this rank sent to and received from peers, by where the
  // peer is: the same node, another node of this region, another region (the
  // WAN). Counted per connection: communicators split from one root share them.
  struct Tier {
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
  };
  Tier node, region, wan;
  uint64_t collectives = 0;     // operations completed, successfully or not
  uint64_t point_to_point = 0;  // sends, receives and batches completed
  uint64_t failed = 0;
  absl::Duration collective_time;      // summed running time of the collectives
  absl::Duration point_to_point_time;  // summed waits of the point-to-point calls
};

class Communicator {
 public:
  // Joins the job described by `bootstrap` (which is kept for the communicator's life).
  static absl::StatusOr<std::unique_ptr<Communicator>> Create(std::unique_ptr<bootstrap::Bootstrap> bootstrap,
                                                              const Config& config);
  // Under mpirun: addresses are exchanged through MPI, which is used for nothing else.
  static absl::StatusOr<std::unique_ptr<Communicator>> CreateFromMpi(const Config& config);
  // torchrun-style: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE (rank 0 hosts a TCP store).
  static absl::StatusOr<std::unique_ptr<Communicator>> CreateFromEnvironment(const Config& config);
  // MPI when launched by mpirun, the environment otherwise; reads Config from the environment.
  static absl::StatusOr<std::unique_ptr<Communicator>> CreateDefault();

  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return static_cast<int>(placements_.size()); }
  int local_rank() const { return placements_[rank_].local_rank; }
  int local_size() const;
  const std::string& node() const { return placements_[rank_].node; }
  const std::string& region() const { return placements_[rank_].region; }
  const std::vector<RankPlacement>& placements() const { return placements_; }
  // Distinct regions among the ranks (1 when the job is in one place).
  int num_regions() const { return num_regions_; }
  uint64_t job_id() const { return job_id_; }
  const Config& config() const { return config_; }
  // The cluster spec (SILK_CLUSTER_SPEC), or null when none was given.
  const cluster::ClusterSpec* spec() const { return spec_.get(); }
  // Round trip and bandwidth of each network tier, measured at start-up; the
  // same on every rank (see tiers.h).
  const Tiers& tiers() const { return tiers_; }
  // The WAN's rate as this rank's large cross-region all-reduces measured it
  // (rate_estimator.h): what paces them. Local to this rank, unlike tiers().
  const std::shared_ptr<RateEstimator>& wan_rate() const { return wan_rate_; }

  // OK while healthy; after any failure, the sticky error every call reports.
  absl::Status status() const;
  // Counters since creation; cheap enough to read every step.
  CommStats Stats() const;
  // Fails the communicator on every rank with `reason`.
  void Abort(const absl::Status& reason);

  // Queues a collective on the engine (used by collectives/); `timeout` zero means config().timeout.
  WorkPtr Submit(const OpDescriptor& descriptor, absl::Duration timeout, OpBody body, bool may_overlap = false);
  // A blocking call's: runs `body` at once on this thread if the engine is idle (Engine::RunHereIfIdle).
  std::optional<absl::Status> RunHereIfIdle(const OpDescriptor& descriptor, absl::Duration timeout,
                                            absl::FunctionRef<absl::Status(OpContext&)> body);
  transport::Transport& transport() { return *transport_; }

  // Point-to-point (collectives/point_to_point.h). The number of this rank's
  // next send to (or receive from) `peer` with `tag`: the n-th send from a to
  // b with a tag matches b's n-th receive from a with it (MPI's order).
  uint32_t NextMessageNumber(int peer, int32_t tag, bool send);
  // Waits for requests the caller posted (Engine::Track); `timeout` zero means config().timeout.
  WorkPtr Track(uint64_t op_id, const OpDescriptor& descriptor, absl::Duration timeout,
                std::vector<transport::RequestPtr> requests);

  // Split communicators (runtime/split.cc; the collective form is Split in
  // collectives/split.h). A communicator of `members` (ranks of this one, in
  // the new order, this rank among them) over this one's connections: nothing
  // is connected or exchanged, and ranks keep their node and region. `id`
  // must be the same on every member and larger than any this rank used
  // before (next_child_id(); Split agrees on it). `timeout` zero keeps this
  // one's. The child keeps the connections alive; a failure in either fails
  // both (they share the connections).
  absl::StatusOr<std::unique_ptr<Communicator>> CreateChild(const std::vector<int>& members, uint32_t id,
                                                            absl::Duration timeout = absl::ZeroDuration()) const;
  // The smallest id this rank has not used, shared by every communicator split
  // from the same root.
  uint32_t next_child_id() const;

  // Elastic jobs (SILK_ELASTIC=1, runtime/elastic.cc; docs/reliability.md,
  // "Membership"): the communicator outlives lost ranks. After an operation
  // fails because a peer was lost, every survivor calls Reconfigure; they
  // agree on who is still here (through the job's coordinator), and this same
  // object goes on as a new, smaller communicator: ranks numbered densely in
  // member order, regions and tiers recomputed, fresh connections. The same
  // call with `admit_up_to` = an agreed JoinRequests() value also admits
  // processes that asked to join (restarted ranks, a region back from a
  // partition). A member the others went on without asks to join again and
  // returns when admitted. No operation may be in flight or be started
  // meanwhile (as NCCL's shrink); Work handles and split communicators of the
  // previous membership fail. State held above the communicator (a model, an
  // optimiser) is the caller's to make equal again (training/elastic_state.h).
  struct Reconfiguration {
    uint64_t epoch = 0;
    std::vector<int> lost, joined;  // member ids against the previous membership
    bool rejoined = false;          // this process had been left out and was admitted again
    absl::Duration took;
  };
  absl::StatusOr<Reconfiguration> Reconfigure(int64_t admit_up_to = -1);
  bool elastic() const;
  // This process's member id (RANK at launch); the rank for a non-elastic communicator.
  int member() const;
  // The membership's number (1 for the first), and each rank's member id.
  uint64_t epoch() const;
  std::vector<int> members() const;
  // Join requests made in this job so far (a counter the coordinator keeps,
  // read in the background; it may differ between ranks for a moment, so
  // agree on it, e.g. with an all-reduce MAX, before passing it to
  // Reconfigure). Pending() is true while it exceeds what this membership answered.
  int64_t JoinRequests() const;
  int64_t AnsweredJoinRequests() const;
  // The job is over (every rank finished its work): processes still asking to
  // join are told so and return an Aborted error instead of waiting.
  absl::Status MarkJobFinished();

 private:
  Communicator();  // out of line: the elastic members are incomplete types here
  // Where each rank of the root communicator that is also in this one is, as
  // the trace's phases name tiers (Engine::EnableTrace).
  std::vector<uint8_t> TiersByRootRank() const;
  // Joins the exchange only to hand the other ranks `reason`; returns it.
  static absl::Status PublishFailedStart(const absl::Status& reason);
  // Tier tables kept between an elastic job's memberships, by region order
  // ("xinjiang,chongqing"): a new membership over the same regions sends the
  // kept table instead of measuring the links again.
  struct TierMemory {
    std::function<std::optional<Tiers>(const std::string& regions)> find;
    std::function<void(const std::string& regions, const Tiers& tiers)> keep;
  };
  static absl::StatusOr<std::unique_ptr<Communicator>> Create(std::unique_ptr<bootstrap::Bootstrap> bootstrap,
                                                              const Config& config, const TierMemory* tier_memory);
  // An elastic job's communicator: the first membership, or admitted into a running job.
  static absl::StatusOr<std::unique_ptr<Communicator>> CreateElastic(const Config& config);
  // A communicator for `view`'s epoch, through the coordinator.
  static absl::StatusOr<std::unique_ptr<Communicator>> CreateForEpoch(Membership& membership,
                                                                      const MembershipView& view, const Config& config);
  // Takes `fresh`'s connections, engine and placement; this one's are closed.
  void Adopt(Communicator& fresh);
  // Start-up steps after the exchange of rank records (communicator.cc).
  void PlaceRanks(const std::vector<RankInfo>& infos);
  absl::Status ConnectPeers(LocalStart& local, const std::vector<RankInfo>& infos, const std::string& token,
                            absl::Time deadline);

  Config config_;
  int rank_ = 0;
  uint64_t job_id_ = 0;
  std::vector<RankPlacement> placements_;
  int num_regions_ = 1;
  std::unique_ptr<cluster::ClusterSpec> spec_;
  Tiers tiers_;
  std::shared_ptr<RateEstimator> wan_rate_ = std::make_shared<RateEstimator>();
  std::unique_ptr<bootstrap::Bootstrap> bootstrap_;
  std::shared_ptr<transport::Transport> transport_;  // shared with split communicators (as their root's)
  std::unique_ptr<Engine> engine_;
  // Splitting: the root communicator's transport, each rank's rank there, and
  // the ids of split communicators (runtime/split.cc).
  std::shared_ptr<transport::Transport> root_transport_;
  std::vector<int> root_ranks_;
  struct ChildIds {
    absl::Mutex mu;
    uint32_t next ABSL_GUARDED_BY(mu) = 1;
  };
  std::shared_ptr<ChildIds> child_ids_ = std::make_shared<ChildIds>();
  // Elastic jobs: the membership (null otherwise) and the current epoch's view.
  std::unique_ptr<Membership> membership_;
  std::unique_ptr<MembershipView> view_;
  absl::Mutex numbers_mu_;
  // By (peer, tag, send): the next message number.
  absl::flat_hash_map<uint64_t, uint32_t> message_numbers_ ABSL_GUARDED_BY(numbers_mu_);
};

}  // namespace silk
