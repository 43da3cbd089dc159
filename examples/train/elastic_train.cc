// silk-train --elastic: the MLP training of train.cc, on a communicator that
// outlives lost ranks (Communicator::Reconfigure) and admits restarted ones,
// with the training state made equal after every change (training::SyncState).
//
// What a step means here (docs/reliability.md, "Elastic training"):
//   - each member draws the samples of its own shard, named by (step, member),
//     as silk-train does by (step, rank): a fault-free elastic run trains on
//     exactly silk-train's samples. A step run while a member is missing skips
//     that member's share; nothing is drawn twice;
//   - the gradient is averaged over the members present (the global batch is
//     batch x members, so each step weighs its samples equally);
//   - a step either completes (its update applied on some rank, whose state
//     then wins) or is run again from the state before it: the step counter
//     never repeats or skips a completed step;
//   - delayed: the exchange in flight when the membership changes is dropped
//     (one step's gradient lost, no step repeated); diloco: the anchor and
//     the outer momentum are carried over and handed to restarted members,
//     and every replica takes the winning rank's parameters (the other
//     replicas' inner steps since the last outer step are dropped).
#include "examples/train/elastic_train.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "examples/train/mlp.h"
#include "runtime/communicator.h"
#include "runtime/core/error.h"
#include "runtime/core/json.h"
#include "training/elastic_state.h"
#include "training/gradient_sync.h"
#include "training/optimizer.h"

namespace silk::examples {
namespace {

// One JSON object per line, appended: what the chaos harness reads.
class EventLog {
 public:
  EventLog(const std::string& pattern, int member) : member_(member) {
    if (pattern.empty()) return;
    const std::string path = absl::StrReplaceAll(pattern, {{"%r", absl::StrCat(member)}});
    file_ = std::fopen(path.c_str(), "a");
    if (file_ == nullptr) std::fprintf(stderr, "silk-train: cannot append to %s; no events\n", path.c_str());
  }
  ~EventLog() {
    if (file_ != nullptr) std::fclose(file_);
  }
  // `fields`: more members of the object, each starting with a comma.
  void Write(const char* event, const std::string& fields = "") {
    if (file_ == nullptr) return;
    std::fprintf(file_, "{\"t\":%.6f,\"member\":%d,\"event\":\"%s\"%s}\n",
                 absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()), member_, event, fields.c_str());
    std::fflush(file_);
  }

 private:
  const int member_;
  FILE* file_ = nullptr;
};

std::string Json(const std::vector<int>& ids) { return absl::StrCat("[", absl::StrJoin(ids, ","), "]"); }

class ElasticTrainer {
 public:
  ElasticTrainer(const Flags& flags, Communicator& comm, EventLog& log)
      : flags_(flags), comm_(comm), log_(log), model_(Sizes(flags)),
        data_(flags.features, flags.classes, flags.seed, flags.noise), world_(comm.config().env_world_size) {
    // A member of the first membership starts from the seed like every other
    // (RunEpoch draws it); a restarted one holds nothing until the state reaches it.
    if (comm.epoch() == 1) step_ = 0;
    announce_join_ = step_ < 0;
  }

  // Runs every step; reconfigures on a lost member or an admission.
  int Run() {
    while (true) {
      absl::StatusOr<End> end = RunEpoch();
      if (!end.ok()) return Exit(end.status());
      if (*end == End::kDone) return Finish();
      const int64_t admit = *end == End::kAdmit ? admit_up_to_ : -1;
      absl::StatusOr<Communicator::Reconfiguration> r = comm_.Reconfigure(admit);
      if (!r.ok()) return Exit(r.status());
      log_.Write("reconfigured", absl::StrFormat(",\"epoch\":%d,\"size\":%d,\"members\":%s,\"lost\":%s,\"joined\":%s,"
                                                 "\"seconds\":%.3f,\"rejoined\":%s",
                                                 r->epoch, comm_.size(), Json(comm_.members()), Json(r->lost),
                                                 Json(r->joined), absl::ToDoubleSeconds(r->took),
                                                 r->rejoined ? "true" : "false"));
      if (r->rejoined) announce_join_ = true;
    }
  }

 private:
  enum class End { kDone, kFailed, kAdmit };

  static std::vector<int> Sizes(const Flags& f) {
    std::vector<int> sizes = {f.features};
    for (int l = 0; l < f.layers; ++l) sizes.push_back(f.hidden);
    sizes.push_back(f.classes);
    return sizes;
  }
  // Each parameter's place in an arena laid out as GradientSync lays out its
  // own (the same for every membership: it depends on the model alone).
  std::vector<float*> Pointers(float* arena) const {
    std::vector<float*> out;
    for (size_t offset : param_offset_) out.push_back(arena + offset);
    return out;
  }

  // One membership's share of the run.
  absl::StatusOr<End> RunEpoch() {
    absl::StatusOr<std::unique_ptr<training::GradientSync>> made =
        training::GradientSync::Create(comm_, model_.ParamCounts(), SyncOptions(flags_));
    if (!made.ok()) return made.status();
    training::GradientSync& sync = **made;
    const bool first_epoch = comm_.epoch() == 1;  // the same on every member of it
    if (params_.empty()) {  // this process's first membership
      param_offset_ = sync.layout().param_offset;
      params_.assign(sync.params().size(), 0.0f);
      optimiser_ = std::make_unique<training::SgdMomentum>(params_.size(), flags_.lr, flags_.momentum);
      if (step_ == 0) model_.Init(flags_.InitSeed(), Pointers(params_.data()));
    }
    std::copy(params_.begin(), params_.end(), sync.params().begin());
    absl::Span<float> velocity = optimiser_->velocity();
    std::vector<training::StateBlock> state = {{sync.params().data(), sync.params().size() * sizeof(float)},
                                               {velocity.data(), velocity.size() * sizeof(float)}};
    const std::vector<training::StateBlock> policy = sync.PolicyState();
    state.insert(state.end(), policy.begin(), policy.end());
    if (first_epoch) {
      // Every member starts from the seed; this also sets diloco's anchor.
      if (absl::Status s = sync.BroadcastParameters(); !s.ok()) {
        absl::StatusOr<End> failed = Failed(s, sync);
        carried_.clear();  // no anchor was agreed: the next membership takes the parameters as one
        return failed;
      }
    } else if (carried_.empty() && !policy.empty() && step_ >= 0) {
      std::memcpy(policy[0].data, params_.data(), std::min(policy[0].bytes, params_.size() * sizeof(float)));
    } else {
      for (size_t i = 0; i < carried_.size() && i < policy.size(); ++i) {
        std::memcpy(policy[i].data, carried_[i].data(), std::min(carried_[i].size(), policy[i].bytes));
      }
    }
    absl::StatusOr<training::StateSyncReport> synced = training::SyncState(comm_, &step_, state);
    if (!synced.ok()) return Failed(synced.status(), sync);
    if (synced->source >= 0) {
      log_.Write("state", absl::StrFormat(",\"from\":%d,\"bytes\":%d,\"seconds\":%.3f,\"step\":%d",
                                          comm_.members()[synced->source], synced->bytes_received,
                                          absl::ToDoubleSeconds(synced->took), synced->step));
    }
    sync.set_step(static_cast<int>(step_));
    const std::vector<float*> params = Pointers(sync.params().data());
    std::vector<float*> grads = Pointers(sync.grads().data());
    std::vector<float> x(size_t(flags_.batch) * flags_.features);
    std::vector<int> labels(flags_.batch);
    std::vector<std::vector<char>> before(state.size());
    while (step_ < flags_.steps) {
      for (size_t i = 0; i < state.size(); ++i) {
        const char* bytes = static_cast<const char*>(state[i].data);
        before[i].assign(bytes, bytes + state[i].bytes);
      }
      const absl::Time t0 = absl::Now();
      for (int j = 0; j < flags_.batch; ++j) {
        const uint64_t index = (uint64_t(step_) * world_ + comm_.member()) * flags_.batch + j;
        labels[j] = data_.Sample(index, x.data() + size_t(j) * flags_.features);
      }
      const float loss = model_.Forward(params, x.data(), labels.data(), flags_.batch);
      absl::Status status;
      model_.Backward(params, grads, x.data(), labels.data(), flags_.batch,
                      [&](int i) { status.Update(sync.MarkReady(i)); });
      if (status.ok()) {
        status = sync.Finish([&](size_t offset, size_t count) {
          optimiser_->Step(sync.params().subspan(offset, count), sync.grads().subspan(offset, count), offset);
        });
      }
      if (status.ok()) status = sync.EndStep();
      if (!status.ok()) {  // the step did not complete here: back to the state before it
        for (size_t i = 0; i < state.size(); ++i) std::memcpy(state[i].data, before[i].data(), before[i].size());
        return Failed(status, sync);
      }
      RecordStep(loss, absl::Now() - t0);
      if (step_ % flags_.admit_every == 0 && step_ < flags_.steps) {
        absl::StatusOr<bool> admit = AgreeOnJoinRequests();
        if (!admit.ok()) return Failed(admit.status(), sync);
        if (*admit) {
          if (absl::Status s = sync.Drain(); !s.ok()) return Failed(s, sync);
          Carry(sync);
          return End::kAdmit;
        }
      }
    }
    if (absl::Status s = sync.Drain(); !s.ok()) return Failed(s, sync);
    Carry(sync);
    return End::kDone;
  }

  // Keeps what the next membership starts from: parameters and the policy's state.
  void Carry(training::GradientSync& sync) {
    std::copy(sync.params().begin(), sync.params().end(), params_.begin());
    const std::vector<training::StateBlock> policy = sync.PolicyState();
    carried_.resize(policy.size());
    for (size_t i = 0; i < policy.size(); ++i) {
      const char* bytes = static_cast<const char*>(policy[i].data);
      carried_[i].assign(bytes, bytes + policy[i].bytes);
    }
  }

  absl::StatusOr<End> Failed(const absl::Status& status, training::GradientSync& sync) {
    log_.Write("failure", absl::StrFormat(",\"step\":%d,\"error\":%s", step_, JsonQuoted(status.message())));
    std::fprintf(stderr, "silk-train member %d: step %lld failed (%s); reconfiguring\n", comm_.member(),
                 static_cast<long long>(step_), std::string(status.message()).c_str());
    Carry(sync);
    return End::kFailed;
  }

  void RecordStep(float loss, absl::Duration took) {
    last_losses_.push_back(loss);
    if (last_losses_.size() > 10) last_losses_.erase(last_losses_.begin());
    log_.Write("step", absl::StrFormat(",\"step\":%d,\"epoch\":%d,\"size\":%d,\"rank\":%d,\"loss\":%.6f,\"samples\":%d,"
                                       "\"seconds\":%.4f",
                                       step_, comm_.epoch(), comm_.size(), comm_.rank(), loss,
                                       flags_.batch * comm_.size(), absl::ToDoubleSeconds(took)));
    if (announce_join_) {
      log_.Write("joined", absl::StrFormat(",\"epoch\":%d,\"step\":%d", comm_.epoch(), step_));
      announce_join_ = false;
    }
    if (comm_.rank() == 0 && !flags_.quiet) {
      std::printf("step %4lld  loss %.4f  time %7.1f ms  members %d  epoch %llu\n", static_cast<long long>(step_), loss,
                  absl::ToDoubleSeconds(took) * 1e3, comm_.size(), static_cast<unsigned long long>(comm_.epoch()));
      std::fflush(stdout);
    }
    ++step_;
  }

  // Whether restarted members wait: the ranks agree on the most join requests
  // any of them has seen, so all admit at the same step.
  absl::StatusOr<bool> AgreeOnJoinRequests() {
    int64_t seen = comm_.JoinRequests(), agreed = 0;
    AllreduceOptions o;
    o.input = &seen;
    o.output = &agreed;
    o.count = 1;
    o.type = DataType::kInt64;
    o.op = ReduceOp::kMax;
    if (absl::Status s = Allreduce(comm_, o); !s.ok()) return s;
    admit_up_to_ = agreed;
    return agreed > comm_.AnsweredJoinRequests();
  }

  int Finish() {
    double mine = 0;
    for (float l : last_losses_) mine += l / std::max<size_t>(1, last_losses_.size());
    double sum = mine;
    AllreduceOptions o;
    o.input = &mine;
    o.output = &sum;
    o.count = 1;
    o.type = DataType::kFloat64;
    const bool global = Allreduce(comm_, o).ok();
    if (global) comm_.MarkJobFinished().IgnoreError();  // every member reached the last step
    const double loss = global ? sum / comm_.size() : mine;
    // Held-out samples no member trained on, on this member's parameters.
    const int eval_n = 1024;
    std::vector<float> ex(size_t(eval_n) * flags_.features);
    std::vector<int> el(eval_n);
    for (int j = 0; j < eval_n; ++j) el[j] = data_.Sample((uint64_t(1) << 40) + j, ex.data() + size_t(j) * flags_.features);
    const float eval_loss = model_.Forward(Pointers(params_.data()), ex.data(), el.data(), eval_n);
    const uint64_t digest = training::StateDigest({{params_.data(), params_.size() * sizeof(float)}});
    // Only sync keeps every rank's parameters identical at every step (delayed
    // and diloco let them differ by design until their next exchange).
    log_.Write("final", absl::StrFormat(",\"step\":%d,\"epoch\":%d,\"size\":%d,\"param_digest\":\"%016x\",\"loss\":%.6f,"
                                        "\"heldout_loss\":%.6f,\"identical_expected\":%s",
                                        step_, comm_.epoch(), comm_.size(), digest, loss, eval_loss,
                                        flags_.policy == "sync" ? "true" : "false"));
    if (comm_.rank() == 0) {
      std::printf("summary: elastic, policy %s, %d steps, %d members at the end (epoch %llu), final loss %.4f "
                  "(last 10 steps), held-out loss %.4f, parameters %016llx\n",
                  flags_.policy.c_str(), flags_.steps, comm_.size(), static_cast<unsigned long long>(comm_.epoch()),
                  loss, eval_loss, static_cast<unsigned long long>(digest));
      std::fflush(stdout);
    }
    return std::isfinite(eval_loss) ? 0 : 3;
  }

  int Exit(const absl::Status& status) {
    log_.Write("exit", absl::StrFormat(",\"step\":%d,\"error\":%s", step_, JsonQuoted(status.message())));
    std::fprintf(stderr, "silk-train member %d: giving up: %s\n", comm_.member(), std::string(status.message()).c_str());
    return 1;
  }

  const Flags& flags_;
  Communicator& comm_;
  EventLog& log_;
  Mlp model_;
  SyntheticData data_;
  const int world_;  // the first membership's size: shards are numbered by member within it
  std::vector<size_t> param_offset_;
  std::vector<float> params_;  // between memberships (empty before the first)
  std::vector<std::vector<char>> carried_;  // the policy's state between memberships
  std::unique_ptr<training::SgdMomentum> optimiser_;
  int64_t step_ = -1;  // -1: no state yet (a restarted member)
  int64_t admit_up_to_ = -1;
  bool announce_join_ = false;
  std::vector<float> last_losses_;
};

}  // namespace

int RunElasticTraining(const Flags& flags) {
  openblas_set_num_threads(1);
  absl::StatusOr<std::unique_ptr<Communicator>> comm = Communicator::CreateDefault();
  if (!comm.ok() && KindOf(comm.status()) == ErrorKind::kAborted) {  // restarted after the others finished
    std::fprintf(stderr, "silk-train --elastic: %s\n", std::string(comm.status().message()).c_str());
    return 0;
  }
  if (!comm.ok()) {
    std::fprintf(stderr, "silk-train --elastic: cannot join the job: %s\n", std::string(comm.status().message()).c_str());
    return 1;
  }
  if (!(*comm)->elastic()) {
    std::fprintf(stderr, "silk-train --elastic: not an elastic launch (SILK_ELASTIC=1 and a silk-coordinator at "
                         "MASTER_ADDR:MASTER_PORT; `cluster/vcluster run --elastic` sets them)\n");
    return 2;
  }
  EventLog log(flags.events, (*comm)->member());
  if ((*comm)->config().elastic_incarnation > 0 || (*comm)->epoch() > 1) {
    log.Write("reconfigured", absl::StrFormat(",\"epoch\":%d,\"size\":%d,\"members\":%s,\"lost\":[],\"joined\":[%d],"
                                              "\"seconds\":0,\"rejoined\":true",
                                              (*comm)->epoch(), (*comm)->size(), Json((*comm)->members()),
                                              (*comm)->member()));
  }
  ElasticTrainer trainer(flags, **comm, log);
  return trainer.Run();
}

}  // namespace silk::examples
