#include "training/gradient_sync.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "runtime/topology.h"

namespace silk::training {

absl::StatusOr<SyncPolicy> ParseSyncPolicy(absl::string_view name) {
  if (name == "sync") return SyncPolicy::kSync;
  if (name == "delayed") return SyncPolicy::kDelayed;
  if (name == "diloco") return SyncPolicy::kDiloco;
  return absl::InvalidArgumentError(absl::StrFormat("unknown sync policy '%s' (sync, delayed, diloco)", name));
}

const char* SyncPolicyName(SyncPolicy policy) {
  switch (policy) {
    case SyncPolicy::kSync: return "sync";
    case SyncPolicy::kDelayed: return "delayed";
    case SyncPolicy::kDiloco: return "diloco";
  }
  return "?";
}

double StepStats::hidden_fraction() const {
  if (exchange <= absl::ZeroDuration()) return 1.0;
  return std::clamp(1.0 - absl::FDivDuration(exposed, exchange), 0.0, 1.0);
}

absl::StatusOr<std::unique_ptr<GradientSync>> GradientSync::Create(Communicator& comm,
                                                                   const std::vector<size_t>& param_counts,
                                                                   const GradientSyncOptions& options) {
  if (param_counts.empty()) return absl::InvalidArgumentError("GradientSync: no parameters registered");
  if (options.policy == SyncPolicy::kDiloco && options.inner_steps < 1) {
    return absl::InvalidArgumentError(absl::StrFormat("GradientSync: diloco needs H >= 1, got %d", options.inner_steps));
  }
  if (options.fragments < 0) return absl::InvalidArgumentError("GradientSync: fragments must be >= 0");
  if (options.policy == SyncPolicy::kDiloco && options.wan_compression != Compression::kNone) {
    return absl::InvalidArgumentError(
        "GradientSync: wan_compression is for sync and delayed; diloco's pseudo-gradients use diloco_compression");
  }
  if (options.policy == SyncPolicy::kDiloco && options.diloco_compression != Compression::kNone &&
      !options.diloco_region_replicas) {
    return absl::InvalidArgumentError(
        "GradientSync: compressed pseudo-gradients need region replicas (each region's ranks must hold the same one)");
  }
  BucketLayout layout = AssignBuckets(param_counts, options.first_bucket_bytes, options.bucket_bytes);
  return std::unique_ptr<GradientSync>(new GradientSync(comm, std::move(layout), options));
}

GradientSync::GradientSync(Communicator& comm, BucketLayout layout, const GradientSyncOptions& options)
    : comm_(comm),
      layout_(std::move(layout)),
      options_(options),
      inv_size_(1.0f / static_cast<float>(comm.size())),
      inv_region_size_(1.0f / static_cast<float>(std::count_if(
                                  comm.placements().begin(), comm.placements().end(),
                                  [&](const RankPlacement& p) { return p.region == comm.region(); }))),
      params_(layout_.total, 0.0f),
      grads_(layout_.total, 0.0f),
      quantizer_(options.diloco_compression) {
  const size_t nb = layout_.buckets.size();
  ready_in_bucket_.assign(nb, 0);
  launched_.assign(nb, 0);
  pending_.resize(nb);
  if (options_.wan_compression != Compression::kNone && options_.wan_error_feedback &&
      options_.policy != SyncPolicy::kDiloco) {
    bucket_feedback_.resize(nb);
  }
  if (options_.policy == SyncPolicy::kDelayed) {
    delayed_local_.assign(layout_.total, 0.0f);
    delayed_sum_.assign(layout_.total, 0.0f);
  }
  if (options_.policy == SyncPolicy::kDiloco) {
    const int h = options_.inner_steps;
    int f = options_.fragments > 0 ? options_.fragments : std::min(h, 4);
    f = static_cast<int>(std::max<size_t>(1, std::min<size_t>(f, std::max<size_t>(layout_.total, 1))));
    for (int i = 0; i < f; ++i) {
      Fragment frag;
      frag.offset = layout_.total * i / f;
      frag.count = layout_.total * (i + 1) / f - frag.offset;
      frag.phase = (i * h) / f;
      fragments_.push_back(frag);
    }
    anchor_.assign(layout_.total, 0.0f);
    outer_velocity_.assign(layout_.total, 0.0f);
    delta_.assign(layout_.total, 0.0f);
    snapshot_.assign(layout_.total, 0.0f);
    if (options_.diloco_compression != Compression::kNone) {
      const Topology topology = Topology::FromPlacements(comm.placements());
      for (int r = 0; r < topology.num_regions(); ++r) {
        region_weights_.push_back(static_cast<float>(topology.region_members(r).size()) /
                                  static_cast<float>(comm.size()));
      }
      size_t largest = 0;
      for (Fragment& frag : fragments_) {
        frag.encoded.assign(quantizer_.EncodedBytes(frag.count), 0);
        frag.gathered.assign(frag.encoded.size() * region_weights_.size(), 0);
        frag.residual.assign(frag.count, 0.0f);
        largest = std::max(largest, frag.count);
      }
      decoded_.assign(largest, 0.0f);
      average_.assign(largest, 0.0f);
    }
  }
}

GradientSync::~GradientSync() {
  // The engine may still be writing into our buffers: never free them under it.
  auto wait_all = [&](absl::Duration bound) {
    bool all = true;
    auto one = [&](Pending& p) {
      if (p.work && !p.work->Wait(bound).ok() && !p.work->Test()) all = false;
    };
    for (Pending& p : pending_) one(p);
    for (Pending& p : pending_prev_) one(p);
    for (Fragment& f : fragments_) one(f.pending);
    return all;
  };
  if (!wait_all(options_.timeout > absl::ZeroDuration() ? options_.timeout : comm_.config().timeout + absl::Seconds(30))) {
    comm_.Abort(absl::AbortedError("GradientSync destroyed with exchanges still running"));
    wait_all(absl::Seconds(30));
  }
}

std::vector<StateBlock> GradientSync::PolicyState() {
  if (options_.policy != SyncPolicy::kDiloco) return {};
  return {{anchor_.data(), anchor_.size() * sizeof(float)},
          {outer_velocity_.data(), outer_velocity_.size() * sizeof(float)}};
}

absl::Status GradientSync::BroadcastParameters() {
  BroadcastOptions b;
  b.input = b.output = params_.data();
  b.count = params_.size();
  b.root = 0;
  b.timeout = options_.timeout;
  absl::Status s = Broadcast(comm_, b);
  if (s.ok() && options_.policy == SyncPolicy::kDiloco) anchor_ = params_;
  return s;
}

bool GradientSync::BucketsEveryStep() const {
  return options_.policy != SyncPolicy::kDiloco || options_.diloco_region_replicas;
}

absl::Status GradientSync::LaunchBucket(int b, const float* input, float* output) {
  ErrorFeedback* feedback = bucket_feedback_.empty() ? nullptr : &bucket_feedback_[b];
  return Launch(input, output, layout_.buckets[b].count, absl::StrFormat("bucket %d", b), &pending_[b],
                /*within_region=*/options_.policy == SyncPolicy::kDiloco, feedback);
}

absl::Status GradientSync::Launch(const float* input, float* output, size_t count, const std::string& label,
                                  Pending* pending, bool within_region, ErrorFeedback* feedback) {
  AllreduceOptions o;
  o.input = input;
  o.output = output;
  o.count = count;
  o.type = DataType::kFloat32;
  o.op = ReduceOp::kSum;  // scaled by 1/size here, so the result is bit-identical to sum-then-scale
  o.timeout = options_.timeout;
  o.may_overlap = true;  // buckets and fragments are disjoint: their WAN latencies overlap
  o.within_region = within_region;
  if (!within_region) {
    o.wan_compression = options_.wan_compression;
    o.error_feedback = options_.wan_compression != Compression::kNone ? feedback : nullptr;
  }
  absl::StatusOr<WorkPtr> work = AllreduceAsync(comm_, o);
  if (!work.ok()) return work.status();
  pending->work = *work;
  current_.bytes_reduced += count * sizeof(float);
  RecordExchange(*work, label);
  return absl::OkStatus();
}

void GradientSync::RecordExchange(const WorkPtr& work, const std::string& label) {
  if (TraceRecorder* trace = options_.trace) {
    work->OnComplete([trace, label, w = std::weak_ptr<Work>(work)](const absl::Status&) {
      absl::Time end = absl::Now();
      WorkPtr p = w.lock();
      trace->Span("exchange", label, end - (p ? p->duration() : absl::ZeroDuration()), end);
    });
  }
}

absl::Status GradientSync::WaitFor(Pending& pending) {
  if (!pending.work) return absl::OkStatus();
  const absl::Duration bound =
      options_.timeout > absl::ZeroDuration() ? options_.timeout + absl::Seconds(30) : comm_.config().timeout + absl::Seconds(30);
  absl::Time start = absl::Now();
  absl::Status s = pending.work->Wait(bound);
  absl::Time end = absl::Now();
  current_.exposed += end - start;
  if (options_.trace != nullptr && end - start > absl::Microseconds(20)) options_.trace->Span("compute", "wait", start, end);
  current_.exchange += pending.work->duration();
  pending.work.reset();
  return s;
}

absl::Status GradientSync::MarkReady(int i) {
  if (i < 0 || i >= static_cast<int>(layout_.bucket_of_param.size())) {
    return absl::InvalidArgumentError(absl::StrFormat("MarkReady: no parameter %d", i));
  }
  if (!BucketsEveryStep()) return absl::OkStatus();
  const int b = layout_.bucket_of_param[i];
  const Bucket& bucket = layout_.buckets[b];
  if (launched_[b]) return absl::FailedPreconditionError(absl::StrFormat("MarkReady(%d): bucket %d already launched", i, b));
  if (++ready_in_bucket_[b] < static_cast<int>(bucket.params.size())) return absl::OkStatus();
  launched_[b] = 1;
  if (options_.policy == SyncPolicy::kDelayed) return CorrectAndLaunchDelayed(b);
  float* g = grads_.data() + bucket.offset;
  return LaunchBucket(b, g, g);
}

// grads = local_t + (avg_{t-1} - local_{t-1}), then local_t goes out. The
// exchange runs out of place, so its input is still local_{t-1} when its sum
// lands: one pass over the bucket reads the gradient, the sum and local_{t-1},
// writes the gradient and local_t, and nothing is copied.
absl::Status GradientSync::CorrectAndLaunchDelayed(int b) {
  const Bucket& bucket = layout_.buckets[b];
  float* g = grads_.data() + bucket.offset;
  float* local = delayed_local_.data() + bucket.offset;
  float* sum = delayed_sum_.data() + bucket.offset;
  if (pending_prev_.empty()) {  // step 0: g_0 = local_0
    std::memcpy(local, g, bucket.count * sizeof(float));
  } else {
    if (absl::Status s = WaitFor(pending_prev_[b]); !s.ok()) return s;
    const float inv_size = inv_size_;  // a local: no store below can change it (the loop vectorizes)
    for (size_t k = 0; k < bucket.count; ++k) {
      const float now = g[k];
      g[k] = now + (sum[k] * inv_size - local[k]);
      local[k] = now;
    }
  }
  return LaunchBucket(b, local, sum);
}

absl::Status GradientSync::Finish() { return Finish(nullptr); }

absl::Status GradientSync::Finish(const RangeReady& ready) {
  auto done = [&](const Bucket& bucket) {
    if (ready) ready(bucket.offset, bucket.count);
  };
  if (!BucketsEveryStep()) {
    for (const Bucket& bucket : layout_.buckets) done(bucket);
    return absl::OkStatus();
  }
  // Buckets whose parameters were not all marked ready go now (e.g. unused parameters).
  for (size_t b = 0; b < layout_.buckets.size(); ++b) {
    if (launched_[b]) continue;
    const Bucket& bucket = layout_.buckets[b];
    ready_in_bucket_[b] = static_cast<int>(bucket.params.size()) - 1;
    if (absl::Status s = MarkReady(bucket.params.back()); !s.ok()) return s;
  }
  if (options_.policy != SyncPolicy::kDelayed) {
    const float scale = options_.policy == SyncPolicy::kDiloco ? inv_region_size_ : inv_size_;
    for (size_t b = 0; b < layout_.buckets.size(); ++b) {
      if (absl::Status s = WaitFor(pending_[b]); !s.ok()) return s;
      const Bucket& bucket = layout_.buckets[b];
      float* g = grads_.data() + bucket.offset;
      for (size_t k = 0; k < bucket.count; ++k) g[k] *= scale;
      done(bucket);
    }
    return absl::OkStatus();
  }
  // delayed: every bucket's correction was made as it launched.
  for (const Bucket& bucket : layout_.buckets) done(bucket);
  return absl::OkStatus();
}

absl::Status GradientSync::LaunchFragment(int f) {
  Fragment& frag = fragments_[f];
  const float* a = anchor_.data() + frag.offset;
  const float* p = params_.data() + frag.offset;
  float* d = delta_.data() + frag.offset;
  float* snap = snapshot_.data() + frag.offset;
  for (size_t k = 0; k < frag.count; ++k) {
    d[k] = a[k] - p[k];
    snap[k] = p[k];
  }
  frag.in_flight = true;
  const std::string label = absl::StrFormat("fragment %d", f);
  if (options_.diloco_compression == Compression::kNone) return Launch(d, d, frag.count, label, &frag.pending);
  // e = delta + the error of the last sync; send code(e), keep e - decode(code(e)).
  float* e = frag.residual.data();
  for (size_t k = 0; k < frag.count; ++k) e[k] += d[k];
  quantizer_.Encode(e, frag.count, frag.encoded.data());
  quantizer_.Decode(frag.encoded.data(), frag.count, decoded_.data());
  for (size_t k = 0; k < frag.count; ++k) e[k] -= decoded_[k];
  RegionAllgatherOptions o;
  o.input = frag.encoded.data();
  o.output = frag.gathered.data();
  o.bytes = frag.encoded.size();
  o.timeout = options_.timeout;
  o.may_overlap = true;
  absl::StatusOr<WorkPtr> work = RegionAllgatherAsync(comm_, o);
  if (!work.ok()) return work.status();
  frag.pending.work = *work;
  current_.bytes_reduced += frag.encoded.size();
  RecordExchange(*work, label);
  return absl::OkStatus();
}

const float* GradientSync::FragmentAverage(int f) {
  Fragment& frag = fragments_[f];
  float* d = delta_.data() + frag.offset;
  if (options_.diloco_compression == Compression::kNone) {
    for (size_t k = 0; k < frag.count; ++k) d[k] *= inv_size_;  // the sum, averaged
    return d;
  }
  // Every rank decodes the same payloads and adds them in region order: the same bits everywhere.
  float* avg = average_.data();
  std::fill(avg, avg + frag.count, 0.0f);
  for (size_t r = 0; r < region_weights_.size(); ++r) {
    quantizer_.Decode(frag.gathered.data() + r * frag.encoded.size(), frag.count, decoded_.data());
    for (size_t k = 0; k < frag.count; ++k) avg[k] += region_weights_[r] * decoded_[k];
  }
  return avg;
}

absl::Status GradientSync::MergeFragment(int f) {
  Fragment& frag = fragments_[f];
  frag.in_flight = false;
  if (absl::Status s = WaitFor(frag.pending); !s.ok()) return s;
  const float lr = options_.outer_lr, mu = options_.outer_momentum;
  float* a = anchor_.data() + frag.offset;
  float* v = outer_velocity_.data() + frag.offset;
  float* p = params_.data() + frag.offset;
  const float* average = FragmentAverage(f);
  const float* snap = snapshot_.data() + frag.offset;
  for (size_t k = 0; k < frag.count; ++k) {
    const float avg = average[k];
    v[k] = mu * v[k] + avg;
    a[k] -= lr * (avg + mu * v[k]);  // Nesterov
    p[k] = a[k] + (p[k] - snap[k]);  // keep the local progress made while the exchange ran
  }
  return absl::OkStatus();
}

absl::Status GradientSync::EndStep() {
  if (options_.policy == SyncPolicy::kDiloco) {
    const int h = options_.inner_steps;
    for (size_t f = 0; f < fragments_.size(); ++f) {
      if (fragments_[f].in_flight) {
        if (absl::Status s = MergeFragment(static_cast<int>(f)); !s.ok()) return s;
      }
    }
    for (size_t f = 0; f < fragments_.size(); ++f) {
      if ((step_ + 1 + fragments_[f].phase) % h == 0) {
        if (absl::Status s = LaunchFragment(static_cast<int>(f)); !s.ok()) return s;
      }
    }
  }
  if (BucketsEveryStep()) {
    if (options_.policy == SyncPolicy::kDelayed) pending_prev_.swap(pending_);
    pending_.assign(layout_.buckets.size(), Pending());
    std::fill(ready_in_bucket_.begin(), ready_in_bucket_.end(), 0);
    std::fill(launched_.begin(), launched_.end(), 0);
  }
  last_ = current_;
  current_ = StepStats();
  ++step_;
  return absl::OkStatus();
}

absl::Status GradientSync::Drain() {
  absl::Status first;
  for (Pending& p : pending_) first.Update(WaitFor(p));
  for (Pending& p : pending_prev_) first.Update(WaitFor(p));
  for (size_t f = 0; f < fragments_.size(); ++f) {
    if (fragments_[f].in_flight) first.Update(MergeFragment(static_cast<int>(f)));
  }
  return first;
}

}  // namespace silk::training
