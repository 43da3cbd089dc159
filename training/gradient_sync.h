// GradientSync: the data-parallel training loop's view of Silk, like PyTorch's
// DistributedDataParallel reducer. The loop registers its parameters (float32),
// reads and writes them and their gradients through two flat arenas laid out in
// backward order, marks each gradient ready as backward produces it, and calls
// Finish() before and EndStep() after its optimiser step. One sync policy per run:
//
//   sync     every step; each bucket's all-reduce starts as soon as the bucket's
//            gradients are all ready, in place in the gradient arena, so the
//            exchange overlaps the rest of backward. Finish() waits and leaves
//            the average over ranks: the same as training on the global batch.
//   delayed  the exchange of step t's gradients overlaps step t+1. Finish() at
//            step t leaves local_t + (avg_{t-1} - local_{t-1}): the local
//            gradient now, corrected by the previous step's global average.
//   diloco   H local optimiser steps, then each fragment's pseudo-gradient
//            (anchor - params) is averaged and applied to the shared anchor with
//            an outer Nesterov step; fragments are staggered across the H steps
//            and each exchange overlaps one further inner step. By default each
//            region is one replica: its ranks average their gradients every
//            step inside the region (sync's buckets, nothing over the WAN), so
//            only the pseudo-gradients cross regions.
//
// See docs/training.md for the arithmetic and why it was chosen. The exchange
// runs on the communicator's engine and progress threads; the calling thread
// only launches, waits and does element-wise arithmetic. Not thread-safe: one
// training thread calls everything.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "collectives/compression/error_feedback.h"
#include "runtime/communicator.h"
#include "runtime/engine/work.h"
#include "training/buckets.h"
#include "training/elastic_state.h"
#include "training/compression.h"
#include "training/trace.h"

namespace silk::training {

enum class SyncPolicy { kSync, kDelayed, kDiloco };
absl::StatusOr<SyncPolicy> ParseSyncPolicy(absl::string_view name);  // "sync", "delayed", "diloco"
const char* SyncPolicyName(SyncPolicy policy);

struct GradientSyncOptions {
  SyncPolicy policy = SyncPolicy::kSync;
  size_t bucket_bytes = size_t{25} << 20;
  size_t first_bucket_bytes = size_t{1} << 20;
  // diloco
  int inner_steps = 8;   // H
  int fragments = 0;     // 0: min(H, 4)
  float outer_lr = 0.7f;
  float outer_momentum = 0.9f;
  // true: a region is one replica (gradients averaged inside it every step);
  // false: every rank is its own replica.
  bool diloco_region_replicas = true;
  // How pseudo-gradients cross regions (region replicas only): kNone all-reduces
  // them as float32; int8/int4 send each region's blockwise-quantized
  // pseudo-gradient once (RegionAllgather) and keep the rounding error for its
  // next sync (error feedback). See compression.h.
  Compression diloco_compression = Compression::kNone;
  // sync and delayed: how each bucket's all-reduce crosses regions
  // (AllreduceOptions::wan_compression; the regions' own phases stay exact).
  // With wan_error_feedback, each bucket keeps its quantisation error and adds
  // it to its next exchange (one ErrorFeedback per bucket).
  Compression wan_compression = Compression::kNone;
  bool wan_error_feedback = true;
  // Bound on every wait; zero: the communicator's timeout plus 30 s.
  absl::Duration timeout = absl::ZeroDuration();
  TraceRecorder* trace = nullptr;  // when set, exchange and wait spans are recorded
};

// What one step cost in communication, as seen by the training thread.
struct StepStats {
  uint64_t bytes_reduced = 0;  // all-reduce payload launched this step (per rank)
  absl::Duration exchange;     // engine time of the exchanges completed this step
  absl::Duration exposed;      // time the training thread waited for them
  // Share of the exchange hidden behind compute: 1 - exposed / exchange, in [0, 1].
  double hidden_fraction() const;
};

class GradientSync {
 public:
  // `param_counts`: element counts of the parameters in registration (forward) order.
  static absl::StatusOr<std::unique_ptr<GradientSync>> Create(Communicator& comm,
                                                              const std::vector<size_t>& param_counts,
                                                              const GradientSyncOptions& options);
  // Waits (bounded) for every exchange in flight; their results are dropped.
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  float* param(int i) { return params_.data() + layout_.param_offset[i]; }
  float* grad(int i) { return grads_.data() + layout_.param_offset[i]; }
  absl::Span<float> params() { return absl::MakeSpan(params_); }
  absl::Span<float> grads() { return absl::MakeSpan(grads_); }
  const BucketLayout& layout() const { return layout_; }
  const GradientSyncOptions& options() const { return options_; }
  int step() const { return step_; }

  // Makes every rank's parameters rank 0's (and the diloco anchor with them).
  absl::Status BroadcastParameters();

  // Backward: parameter i's gradient is final. Under sync and delayed, the
  // bucket's exchange starts once every parameter in it is ready. Under
  // delayed, that also waits for the bucket's exchange of the previous step
  // and leaves the bucket's range of grads() holding the gradient to apply.
  absl::Status MarkReady(int i);
  // Before the optimiser step: leaves in grads() the gradient to apply (see the
  // policies above). Buckets never marked ready are launched here.
  absl::Status Finish();
  // The same, calling `ready(offset, count)` for each bucket, in bucket order, as
  // soon as its range of grads() holds what Finish() leaves there: the loop steps
  // its optimiser on that range while later buckets are still in flight (the
  // same arithmetic as one step over the whole arena after Finish()).
  using RangeReady = std::function<void(size_t offset, size_t count)>;
  absl::Status Finish(const RangeReady& ready);
  // After the optimiser step (diloco: merges and launches fragments); ends the step.
  absl::Status EndStep();
  // End of training: waits for every exchange in flight. diloco: merges them.
  absl::Status Drain();

  // The last completed step's figures (valid after EndStep()).
  const StepStats& last_step() const { return last_; }

  // Elastic jobs (training/elastic_state.h): the policy's own state, which a
  // membership change must carry over and a restarted rank must receive.
  // diloco: the anchor and the outer momentum (the replicas' inner progress
  // since the last outer step is whatever the winning rank's parameters
  // hold). Empty for sync and delayed (delayed's exchange in flight is
  // dropped at a change: one step's gradient lost, no step repeated).
  std::vector<StateBlock> PolicyState();
  // Where the policy's schedule stands (diloco's fragments go at fixed steps
  // modulo H): set after a membership change to the step being resumed.
  void set_step(int step) { step_ = step; }

 private:
  struct Pending {
    WorkPtr work;
  };
  GradientSync(Communicator& comm, BucketLayout layout, const GradientSyncOptions& options);

  // All-reduces (sums) `count` floats from `input` into `output` (may be the same).
  // `feedback`: the bucket's error feedback when its exchange is compressed.
  absl::Status Launch(const float* input, float* output, size_t count, const std::string& label, Pending* pending,
                      bool within_region = false, ErrorFeedback* feedback = nullptr);
  // The bucket's exchange across regions: compressed per wan_compression.
  absl::Status LaunchBucket(int b, const float* input, float* output);
  // delayed: the bucket's gradient to apply, from this step's local gradient and
  // the previous step's exchange; then launches this step's exchange.
  absl::Status CorrectAndLaunchDelayed(int b);
  // Whether gradients are averaged every step in buckets (sync, delayed, diloco by region).
  bool BucketsEveryStep() const;
  absl::Status WaitFor(Pending& pending);
  absl::Status LaunchFragment(int f);
  absl::Status MergeFragment(int f);
  // The averaged pseudo-gradient of fragment f: from the all-reduced sum, or
  // decoded from every region's quantized payload, weighted by region size.
  const float* FragmentAverage(int f);
  void RecordExchange(const WorkPtr& work, const std::string& label);

  Communicator& comm_;
  const BucketLayout layout_;
  const GradientSyncOptions options_;
  const float inv_size_;
  const float inv_region_size_;
  std::vector<float> params_, grads_;
  int step_ = 0;
  StepStats current_, last_;

  // sync / delayed
  std::vector<int> ready_in_bucket_;
  std::vector<char> launched_;
  std::vector<Pending> pending_;       // this step's bucket exchanges
  std::vector<Pending> pending_prev_;  // delayed: step t-1's
  // delayed: the exchange's input, this rank's local gradient of the step last
  // launched (local_{t-1} until the bucket's correction), and its output, the sum.
  std::vector<float> delayed_local_, delayed_sum_;
  std::vector<ErrorFeedback> bucket_feedback_;  // per bucket, with wan_compression and wan_error_feedback

  // diloco
  struct Fragment {
    size_t offset = 0, count = 0;
    int phase = 0;  // launched at steps t with (t + 1 + phase) % H == 0
    Pending pending;
    bool in_flight = false;
    // Compressed exchange: this region's code, every region's, and the rounding
    // error carried to the next sync.
    std::vector<uint8_t> encoded, gathered;
    std::vector<float> residual;
  };
  std::vector<Fragment> fragments_;
  std::vector<float> anchor_, outer_velocity_, delta_, snapshot_;
  BlockQuantizer quantizer_;
  std::vector<float> region_weights_;  // ranks of each region / all ranks, in region order
  std::vector<float> decoded_, average_;  // scratch for the largest fragment
};

}  // namespace silk::training
