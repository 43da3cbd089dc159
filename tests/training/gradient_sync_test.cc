// GradientSync against single-process references, with in-process ranks over
// loopback TCP. With two ranks every sum is a + b, which IEEE makes exact in
// either order, so each policy's result can be compared bit for bit with the
// same arithmetic done here by hand.
#include "training/gradient_sync.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "tests/support/ranks.h"
#include "training/compression.h"
#include "training/optimizer.h"

namespace silk::training {
namespace {

using silk::testing::CreateCommunicators;
using silk::testing::RunOnRanks;
using silk::testing::TestConfig;

void ExpectAllOk(const std::vector<absl::Status>& results) {
  for (size_t r = 0; r < results.size(); ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
}

// Dyadic values with small numerators: every partial sum is exact, so the
// average is the same whatever order the collective adds in.
float Dyadic(int rank, size_t i, int step) { return static_cast<float>(static_cast<int>((rank * 31 + i * 7 + step * 13) % 64) - 32) / 8.0f; }

TEST(GradientSync, SyncAveragesBitForBitOnFourRanksInAnyReadyOrder) {
  const int n = 4;
  const std::vector<size_t> counts = {3, 5, 1000, 7, 20000, 1};
  auto comms = CreateCommunicators(n, TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  GradientSyncOptions options;
  options.first_bucket_bytes = 16;
  options.bucket_bytes = 2048;
  ExpectAllOk(RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    auto sync = GradientSync::Create(comm, counts, options);
    if (!sync.ok()) return sync.status();
    GradientSync& gs = **sync;
    if (gs.layout().buckets.size() < 3) return absl::InternalError("expected several buckets");
    for (int step = 0; step < 3; ++step) {
      for (size_t i = 0; i < gs.grads().size(); ++i) gs.grads()[i] = Dyadic(comm.rank(), i, step);
      // Step 0 in backward order, step 1 in forward order, step 2 marks nothing (Finish launches all).
      const int np = static_cast<int>(counts.size());
      if (step == 0) {
        for (int p = np - 1; p >= 0; --p) SILK_RETURN_IF_ERROR(gs.MarkReady(p));
      } else if (step == 1) {
        for (int p = 0; p < np; ++p) SILK_RETURN_IF_ERROR(gs.MarkReady(p));
      }
      SILK_RETURN_IF_ERROR(gs.Finish());
      for (size_t i = 0; i < gs.grads().size(); ++i) {
        float sum = 0;
        for (int r = 0; r < n; ++r) sum += Dyadic(r, i, step);
        const float expected = sum * (1.0f / n);
        if (std::memcmp(&expected, &gs.grads()[i], sizeof(float)) != 0) {
          return absl::InternalError(absl::StrCat("step ", step, " element ", i, ": ", gs.grads()[i], " != ", expected));
        }
      }
      SILK_RETURN_IF_ERROR(gs.EndStep());
      if (gs.last_step().bytes_reduced != gs.grads().size() * sizeof(float)) {
        return absl::InternalError("every gradient byte should be reduced once per step");
      }
    }
    return gs.Drain();
  }));
}

// Finish(ready) hands each bucket over in bucket order as it lands; stepping the
// optimiser on those ranges gives the same bits as Finish() and one whole step.
TEST(GradientSync, FinishHandsOverEachBucketInOrderWithTheSameBitsAsOneWholeStep) {
  const std::vector<size_t> counts = {3, 5, 1000, 7, 20000, 1};
  auto comms = CreateCommunicators(2, TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  for (SyncPolicy policy : {SyncPolicy::kSync, SyncPolicy::kDelayed, SyncPolicy::kDiloco}) {
    SCOPED_TRACE(SyncPolicyName(policy));
    GradientSyncOptions options;
    options.policy = policy;
    options.first_bucket_bytes = 16;
    options.bucket_bytes = 2048;
    options.inner_steps = 2;
    ExpectAllOk(RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
      SILK_ASSIGN_OR_RETURN(std::unique_ptr<GradientSync> whole, GradientSync::Create(comm, counts, options));
      SILK_ASSIGN_OR_RETURN(std::unique_ptr<GradientSync> ranged, GradientSync::Create(comm, counts, options));
      const size_t total = whole->grads().size();
      SgdMomentum whole_opt(total, 0.05f, 0.9f), ranged_opt(total, 0.05f, 0.9f);
      for (size_t i = 0; i < total; ++i) whole->params()[i] = ranged->params()[i] = Dyadic(1, i, 9);
      for (int step = 0; step < 4; ++step) {
        for (GradientSync* gs : {whole.get(), ranged.get()}) {
          for (size_t i = 0; i < total; ++i) gs->grads()[i] = Dyadic(comm.rank(), i, step);
          for (int p = static_cast<int>(counts.size()) - 1; p >= 0; --p) SILK_RETURN_IF_ERROR(gs->MarkReady(p));
        }
        SILK_RETURN_IF_ERROR(whole->Finish());
        whole_opt.Step(whole->params(), whole->grads());
        size_t next = 0, handed = 0;
        SILK_RETURN_IF_ERROR(ranged->Finish([&](size_t offset, size_t count) {
          const Bucket& expected = ranged->layout().buckets[handed++];
          if (offset != next || offset != expected.offset || count != expected.count) return;
          next = offset + count;
          ranged_opt.Step(ranged->params().subspan(offset, count), ranged->grads().subspan(offset, count), offset);
        }));
        if (handed != ranged->layout().buckets.size() || next != total) {
          return absl::InternalError(absl::StrCat("step ", step, ": ", handed, " ranges up to ", next, " of ", total));
        }
        SILK_RETURN_IF_ERROR(whole->EndStep());
        SILK_RETURN_IF_ERROR(ranged->EndStep());
        if (std::memcmp(whole->params().data(), ranged->params().data(), total * sizeof(float)) != 0) {
          return absl::InternalError(absl::StrCat("step ", step, ": parameters differ"));
        }
      }
      SILK_RETURN_IF_ERROR(whole->Drain());
      return ranged->Drain();
    }));
  }
}

TEST(GradientSync, MarkingAParameterOfALaunchedBucketTwiceFails) {
  auto comms = CreateCommunicators(2, TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  ExpectAllOk(RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    auto sync = GradientSync::Create(comm, {4, 4}, GradientSyncOptions{});
    if (!sync.ok()) return sync.status();
    GradientSync& gs = **sync;
    SILK_RETURN_IF_ERROR(gs.MarkReady(1));
    SILK_RETURN_IF_ERROR(gs.MarkReady(0));  // the only bucket is complete: launched
    if (gs.MarkReady(0).ok()) return absl::InternalError("a second MarkReady should fail");
    if (gs.MarkReady(7).ok()) return absl::InternalError("MarkReady of an unknown parameter should fail");
    SILK_RETURN_IF_ERROR(gs.Finish());
    return gs.EndStep();
  }));
}

// A small model: linear regression y = w.x + b, parameters {w[0:4], w[4:11], w[11:16], b},
// loss 0.5 * mean (w.x + b - y)^2 over a rank's batch of 8.
constexpr int kDim = 16;
const std::vector<size_t> kCounts = {4, 7, 5, 1};

std::vector<float> LocalGradient(const std::vector<float>& p, int rank, int step) {
  // The arena is in backward order; keep the model's own layout (w then b) here
  // and map through the arena offsets in the callers.
  std::vector<float> g(kDim + 1, 0.0f);
  for (int s = 0; s < 8; ++s) {
    float x[kDim];
    float y = 0, pred = p[kDim];
    for (int j = 0; j < kDim; ++j) {
      x[j] = std::sin(0.37f * (rank * 101 + step * 17 + s * 5 + j));
      y += (0.1f * j - 0.7f) * x[j];
      pred += p[j] * x[j];
    }
    y += 0.3f;
    const float err = (pred - y) / 8.0f;
    for (int j = 0; j < kDim; ++j) g[j] += err * x[j];
    g[kDim] += err;
  }
  return g;
}

// Model-order index -> arena index for the layout GradientSync builds.
std::vector<size_t> ArenaIndex(const BucketLayout& layout) {
  std::vector<size_t> index;
  for (size_t p = 0; p < kCounts.size(); ++p) {
    for (size_t k = 0; k < kCounts[p]; ++k) index.push_back(layout.param_offset[p] + k);
  }
  return index;
}

// Parameters between model order and the arena order of a layout (diloco's
// fragments are ranges of the arena).
struct ArenaOrder {
  explicit ArenaOrder(const BucketLayout& layout) : at(ArenaIndex(layout)) {}
  std::vector<float> ToArena(const std::vector<float>& model) const {
    std::vector<float> arena(at.size());
    for (size_t j = 0; j < at.size(); ++j) arena[at[j]] = model[j];
    return arena;
  }
  std::vector<float> ToModel(const std::vector<float>& arena) const {
    std::vector<float> model(at.size());
    for (size_t j = 0; j < at.size(); ++j) model[j] = arena[at[j]];
    return model;
  }
  std::vector<size_t> at;
};

std::vector<float> InitialParams() {
  std::vector<float> p(kDim + 1);
  for (int j = 0; j <= kDim; ++j) p[j] = 0.05f * (j % 5) - 0.1f;
  return p;
}

// Trains `steps` steps on two in-process ranks; returns each rank's final parameters (model order).
std::vector<std::vector<float>> TrainWithGradientSync(const GradientSyncOptions& options, int steps,
                                                      bool two_regions = false) {
  auto comms = CreateCommunicators(2, [&](int rank) {
    Config c = TestConfig();
    if (two_regions) c.region = rank == 0 ? "xinjiang" : "chongqing";
    return c;
  });
  EXPECT_TRUE(comms.ok()) << comms.status();
  if (!comms.ok()) return {};
  std::vector<std::vector<float>> result(2);
  ExpectAllOk(RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    auto sync = GradientSync::Create(comm, kCounts, options);
    if (!sync.ok()) return sync.status();
    GradientSync& gs = **sync;
    const std::vector<size_t> at = ArenaIndex(gs.layout());
    const std::vector<float> init = InitialParams();
    for (int j = 0; j <= kDim; ++j) gs.params()[at[j]] = init[j];
    SILK_RETURN_IF_ERROR(gs.BroadcastParameters());
    SgdMomentum opt(gs.params().size(), 0.1f, 0.9f);
    for (int step = 0; step < steps; ++step) {
      std::vector<float> p(kDim + 1);
      for (int j = 0; j <= kDim; ++j) p[j] = gs.params()[at[j]];
      const std::vector<float> g = LocalGradient(p, comm.rank(), step);
      for (int j = 0; j <= kDim; ++j) gs.grads()[at[j]] = g[j];
      for (int i = static_cast<int>(kCounts.size()) - 1; i >= 0; --i) SILK_RETURN_IF_ERROR(gs.MarkReady(i));
      SILK_RETURN_IF_ERROR(gs.Finish());
      opt.Step(gs.params(), gs.grads());
      SILK_RETURN_IF_ERROR(gs.EndStep());
    }
    SILK_RETURN_IF_ERROR(gs.Drain());
    result[comm.rank()].resize(kDim + 1);
    for (int j = 0; j <= kDim; ++j) result[comm.rank()][j] = gs.params()[at[j]];
    return absl::OkStatus();
  }));
  return result;
}

void ExpectBitEqual(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t j = 0; j < got.size(); ++j) {
    EXPECT_EQ(0, std::memcmp(&got[j], &want[j], sizeof(float))) << what << " element " << j << ": " << got[j] << " vs " << want[j];
  }
}

TEST(GradientSync, SyncPolicyIsGlobalBatchTrainingBitForBit) {
  GradientSyncOptions options;
  options.first_bucket_bytes = 8;  // several buckets even for this small model
  options.bucket_bytes = 32;
  const int steps = 12;
  auto got = TrainWithGradientSync(options, steps);
  ASSERT_EQ(got.size(), 2u);
  // Reference: one process, gradient of the global batch = (g0 + g1) / 2.
  std::vector<float> p = InitialParams();
  SgdMomentum opt(p.size(), 0.1f, 0.9f);
  for (int step = 0; step < steps; ++step) {
    auto g0 = LocalGradient(p, 0, step), g1 = LocalGradient(p, 1, step);
    std::vector<float> g(p.size());
    for (size_t j = 0; j < g.size(); ++j) g[j] = (g0[j] + g1[j]) * 0.5f;
    // The optimiser is element-wise, so the arena order does not matter.
    opt.Step(absl::MakeSpan(p), g);
  }
  ExpectBitEqual(got[0], p, "rank 0");
  ExpectBitEqual(got[1], p, "rank 1");
}

TEST(GradientSync, DelayedPolicyAppliesLocalNowAndCorrectsWithPreviousGlobalAverage) {
  GradientSyncOptions options;
  options.policy = SyncPolicy::kDelayed;
  options.first_bucket_bytes = 8;
  options.bucket_bytes = 32;
  const int steps = 12;
  auto got = TrainWithGradientSync(options, steps);
  ASSERT_EQ(got.size(), 2u);
  // Reference: g_r(t) = local_r(t) + (avg(t-1) - local_r(t-1)), each rank with its own parameters.
  std::vector<std::vector<float>> p(2, InitialParams()), local_prev(2);
  std::vector<SgdMomentum> opt(2, SgdMomentum(kDim + 1, 0.1f, 0.9f));
  std::vector<float> avg_prev;
  for (int step = 0; step < steps; ++step) {
    std::vector<std::vector<float>> local = {LocalGradient(p[0], 0, step), LocalGradient(p[1], 1, step)};
    for (int r = 0; r < 2; ++r) {
      std::vector<float> g = local[r];
      if (step > 0) {
        for (size_t j = 0; j < g.size(); ++j) g[j] = local[r][j] + (avg_prev[j] - local_prev[r][j]);
      }
      opt[r].Step(absl::MakeSpan(p[r]), g);
    }
    avg_prev.assign(kDim + 1, 0.0f);
    for (size_t j = 0; j < avg_prev.size(); ++j) avg_prev[j] = (local[0][j] + local[1][j]) * 0.5f;
    local_prev = local;
  }
  ExpectBitEqual(got[0], p[0], "rank 0");
  ExpectBitEqual(got[1], p[1], "rank 1");
  // Sanity: the ranks differ (each applied its own local gradient last).
  EXPECT_NE(got[0], got[1]);
}

// Two ranks in one region: as replicas of their own (region_replicas false),
// or as one region replica that averages its gradients every step.
void ExpectDilocoMatchesItsDefinition(bool region_replicas) {
  GradientSyncOptions options;
  options.policy = SyncPolicy::kDiloco;
  options.diloco_region_replicas = region_replicas;
  options.inner_steps = 4;
  options.fragments = 2;
  options.outer_lr = 0.7f;
  options.outer_momentum = 0.9f;
  const int steps = 13;  // ends with a fragment in flight: Drain merges it
  auto got = TrainWithGradientSync(options, steps);
  ASSERT_EQ(got.size(), 2u);
  // Reference in arena order, since fragments are ranges of the arena.
  const ArenaOrder order(AssignBuckets(kCounts, options.first_bucket_bytes, options.bucket_bytes));
  const size_t n = kDim + 1;
  std::vector<std::vector<float>> w(2, order.ToArena(InitialParams())), snap(2, std::vector<float>(n)), delta(2, std::vector<float>(n));
  std::vector<float> anchor = w[0], velocity(n, 0.0f);
  std::vector<SgdMomentum> opt(2, SgdMomentum(n, 0.1f, 0.9f));
  const int frags = 2, h = 4;
  std::vector<bool> in_flight(frags, false);
  auto range = [&](int f) { return std::pair<size_t, size_t>(n * f / frags, n * (f + 1) / frags); };
  auto merge = [&](int f) {
    auto [lo, hi] = range(f);
    for (size_t k = lo; k < hi; ++k) {
      const float avg = (delta[0][k] + delta[1][k]) * 0.5f;
      velocity[k] = 0.9f * velocity[k] + avg;
      anchor[k] -= 0.7f * (avg + 0.9f * velocity[k]);
      for (int r = 0; r < 2; ++r) w[r][k] = anchor[k] + (w[r][k] - snap[r][k]);
    }
    in_flight[f] = false;
  };
  for (int step = 0; step < steps; ++step) {
    std::vector<std::vector<float>> g(2);
    for (int r = 0; r < 2; ++r) g[r] = order.ToArena(LocalGradient(order.ToModel(w[r]), r, step));
    if (region_replicas) {  // the region's average, the same on both ranks
      for (size_t k = 0; k < n; ++k) g[0][k] = g[1][k] = (g[0][k] + g[1][k]) * 0.5f;
    }
    for (int r = 0; r < 2; ++r) opt[r].Step(absl::MakeSpan(w[r]), g[r]);
    for (int f = 0; f < frags; ++f) {
      if (in_flight[f]) merge(f);
    }
    for (int f = 0; f < frags; ++f) {
      const int phase = f * h / frags;
      if ((step + 1 + phase) % h != 0) continue;
      auto [lo, hi] = range(f);
      for (int r = 0; r < 2; ++r) {
        for (size_t k = lo; k < hi; ++k) {
          delta[r][k] = anchor[k] - w[r][k];
          snap[r][k] = w[r][k];
        }
      }
      in_flight[f] = true;
    }
  }
  for (int f = 0; f < frags; ++f) {
    if (in_flight[f]) merge(f);
  }
  ExpectBitEqual(got[0], order.ToModel(w[0]), "rank 0");
  ExpectBitEqual(got[1], order.ToModel(w[1]), "rank 1");
  if (region_replicas) ExpectBitEqual(got[0], got[1], "the region's two ranks");
}

// One rank in each of two regions, pseudo-gradients quantized with error
// feedback: each region sends code(delta + residual) and keeps what the code
// lost; every rank averages the decoded codes in region order.
void ExpectCompressedDilocoMatchesItsDefinition(Compression compression) {
  GradientSyncOptions options;
  options.policy = SyncPolicy::kDiloco;
  options.diloco_compression = compression;
  options.inner_steps = 3;
  options.fragments = 2;
  options.outer_lr = 0.7f;
  options.outer_momentum = 0.9f;
  const int steps = 14;
  auto got = TrainWithGradientSync(options, steps, /*two_regions=*/true);
  ASSERT_EQ(got.size(), 2u);
  const ArenaOrder order(AssignBuckets(kCounts, options.first_bucket_bytes, options.bucket_bytes));
  const size_t n = kDim + 1;
  const BlockQuantizer quantizer(compression);
  std::vector<std::vector<float>> w(2, order.ToArena(InitialParams())), snap(2, std::vector<float>(n));
  std::vector<std::vector<float>> residual(2, std::vector<float>(n, 0.0f)), decoded(2, std::vector<float>(n));
  std::vector<float> anchor = w[0], velocity(n, 0.0f);
  std::vector<SgdMomentum> opt(2, SgdMomentum(n, 0.1f, 0.9f));
  const int frags = 2, h = 3;
  std::vector<bool> in_flight(frags, false);
  auto range = [&](int f) { return std::pair<size_t, size_t>(n * f / frags, n * (f + 1) / frags); };
  auto merge = [&](int f) {
    auto [lo, hi] = range(f);
    for (size_t k = lo; k < hi; ++k) {
      const float avg = (0.0f + 0.5f * decoded[0][k]) + 0.5f * decoded[1][k];
      velocity[k] = 0.9f * velocity[k] + avg;
      anchor[k] -= 0.7f * (avg + 0.9f * velocity[k]);
      for (int r = 0; r < 2; ++r) w[r][k] = anchor[k] + (w[r][k] - snap[r][k]);
    }
    in_flight[f] = false;
  };
  for (int step = 0; step < steps; ++step) {
    for (int r = 0; r < 2; ++r) opt[r].Step(absl::MakeSpan(w[r]), order.ToArena(LocalGradient(order.ToModel(w[r]), r, step)));
    for (int f = 0; f < frags; ++f) {
      if (in_flight[f]) merge(f);
    }
    for (int f = 0; f < frags; ++f) {
      if ((step + 1 + f * h / frags) % h != 0) continue;
      auto [lo, hi] = range(f);
      for (int r = 0; r < 2; ++r) {
        std::vector<float> e(hi - lo);
        for (size_t k = lo; k < hi; ++k) {
          snap[r][k] = w[r][k];
          e[k - lo] = residual[r][k] + (anchor[k] - w[r][k]);
        }
        std::vector<uint8_t> code(quantizer.EncodedBytes(e.size()));
        quantizer.Encode(e.data(), e.size(), code.data());
        quantizer.Decode(code.data(), e.size(), decoded[r].data() + lo);
        for (size_t k = lo; k < hi; ++k) residual[r][k] = e[k - lo] - decoded[r][k];
      }
      in_flight[f] = true;
    }
  }
  for (int f = 0; f < frags; ++f) {
    if (in_flight[f]) merge(f);
  }
  ExpectBitEqual(got[0], order.ToModel(w[0]), "rank 0");
  ExpectBitEqual(got[1], order.ToModel(w[1]), "rank 1");
  // The codes really are lossy: float32 pseudo-gradients end elsewhere.
  options.diloco_compression = Compression::kNone;
  EXPECT_NE(TrainWithGradientSync(options, steps, /*two_regions=*/true)[0], got[0]);
}

TEST(GradientSync, DilocoWithInt8PseudoGradientsMatchesItsDefinition) {
  ExpectCompressedDilocoMatchesItsDefinition(Compression::kInt8);
}

TEST(GradientSync, DilocoWithInt4PseudoGradientsMatchesItsDefinition) {
  ExpectCompressedDilocoMatchesItsDefinition(Compression::kInt4);
}

TEST(GradientSync, CompressionNeedsRegionReplicas) {
  auto comms = CreateCommunicators(1, TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  GradientSyncOptions options;
  options.policy = SyncPolicy::kDiloco;
  options.diloco_compression = Compression::kInt4;
  options.diloco_region_replicas = false;
  auto sync = GradientSync::Create(*(*comms)[0], kCounts, options);
  ASSERT_FALSE(sync.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(sync.status())) << sync.status();
}

TEST(GradientSync, DilocoWithARankPerReplicaMatchesItsDefinition) { ExpectDilocoMatchesItsDefinition(false); }

TEST(GradientSync, DilocoWithARegionPerReplicaMatchesItsDefinition) { ExpectDilocoMatchesItsDefinition(true); }

}  // namespace
}  // namespace silk::training
