// GradientSync with a compressed WAN hop (wan_compression) against the same
// arithmetic done here by hand: one rank in each of two regions, so each
// region's partial is its rank's gradient, quantised once with the bucket's
// carried error, and the exchange's sum is code_0 + code_1 on both ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "collectives/algorithms/wan_codec.h"
#include "runtime/core/status_macros.h"
#include "tests/support/ranks.h"
#include "training/gradient_sync.h"
#include "training/optimizer.h"

namespace silk::training {
namespace {

using silk::testing::CreateCommunicators;
using silk::testing::RunOnRanks;
using silk::testing::TestConfig;

const std::vector<size_t> kCounts = {600, 400, 3};  // one bucket of 1003 floats: several quantiser groups
constexpr int kSteps = 10;

// Rank r's gradient at step t in arena order, from its parameters.
float Gradient(const float* p, size_t k, int rank, int step) {
  return 0.1f * p[k] + std::sin(0.37f * static_cast<float>(k + 101 * rank + 17 * step));
}

// Trains on two ranks in two regions; returns each rank's final parameters (arena order).
std::vector<std::vector<float>> Train(const GradientSyncOptions& options) {
  auto comms = CreateCommunicators(2, [&](int rank) {
    Config c = TestConfig();
    c.region = rank == 0 ? "xinjiang" : "chongqing";
    return c;
  });
  EXPECT_TRUE(comms.ok()) << comms.status();
  if (!comms.ok()) return {};
  std::vector<std::vector<float>> result(2);
  auto results = RunOnRanks(*comms, [&](Communicator& comm) -> absl::Status {
    SILK_ASSIGN_OR_RETURN(auto gs, GradientSync::Create(comm, kCounts, options));
    if (gs->layout().buckets.size() != 1) return absl::InternalError("expected one bucket");
    for (size_t k = 0; k < gs->params().size(); ++k) gs->params()[k] = 0.01f * static_cast<float>(k % 7);
    SgdMomentum opt(gs->params().size(), 0.1f, 0.9f);
    for (int step = 0; step < kSteps; ++step) {
      for (size_t k = 0; k < gs->grads().size(); ++k) gs->grads()[k] = Gradient(gs->params().data(), k, comm.rank(), step);
      for (int i = static_cast<int>(kCounts.size()) - 1; i >= 0; --i) SILK_RETURN_IF_ERROR(gs->MarkReady(i));
      SILK_RETURN_IF_ERROR(gs->Finish());
      opt.Step(gs->params(), gs->grads());
      SILK_RETURN_IF_ERROR(gs->EndStep());
    }
    SILK_RETURN_IF_ERROR(gs->Drain());
    result[comm.rank()].assign(gs->params().begin(), gs->params().end());
    return absl::OkStatus();
  });
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(results[r].ok()) << "rank " << r << ": " << results[r];
  return result;
}

// The exchange by hand: each rank's values plus its carried error, coded once;
// the sum of the two codes in region order.
std::vector<float> CompressedSum(Compression c, std::vector<float> a, std::vector<float> b,
                                 std::vector<std::vector<float>>* residual) {
  const silk::BlockQuantizer q(c, algorithms::kWanCompressionGroup);
  std::vector<uint8_t> code(q.EncodedBytes(a.size()));
  q.Quantize(a.data(), residual ? (*residual)[0].data() : nullptr, a.size(), code.data());
  q.Quantize(b.data(), residual ? (*residual)[1].data() : nullptr, b.size(), code.data());
  std::vector<float> sum(a.size());
  for (size_t k = 0; k < a.size(); ++k) sum[k] = a[k] + b[k];
  return sum;
}

void ExpectBitEqual(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(0, std::memcmp(&got[k], &want[k], sizeof(float))) << what << " element " << k << ": " << got[k] << " vs " << want[k];
  }
}

class CompressedSync : public ::testing::TestWithParam<Compression> {};

TEST_P(CompressedSync, SyncIsTheAverageOfTheCodesWithErrorFeedback) {
  GradientSyncOptions options;
  options.wan_compression = GetParam();
  const auto got = Train(options);
  ASSERT_EQ(got.size(), 2u);
  const size_t n = got[0].size();
  std::vector<float> p(n);
  for (size_t k = 0; k < n; ++k) p[k] = 0.01f * static_cast<float>(k % 7);
  std::vector<std::vector<float>> residual(2, std::vector<float>(n, 0.0f));
  SgdMomentum opt(n, 0.1f, 0.9f);
  for (int step = 0; step < kSteps; ++step) {
    std::vector<float> g0(n), g1(n);
    for (size_t k = 0; k < n; ++k) {
      g0[k] = Gradient(p.data(), k, 0, step);
      g1[k] = Gradient(p.data(), k, 1, step);
    }
    std::vector<float> g = CompressedSum(GetParam(), g0, g1, &residual);
    for (float& x : g) x *= 0.5f;
    opt.Step(absl::MakeSpan(p), g);
  }
  ExpectBitEqual(got[0], p, "rank 0");
  ExpectBitEqual(got[1], p, "rank 1");
}

TEST_P(CompressedSync, DelayedCorrectsWithThePreviousCompressedAverage) {
  GradientSyncOptions options;
  options.policy = SyncPolicy::kDelayed;
  options.wan_compression = GetParam();
  const auto got = Train(options);
  ASSERT_EQ(got.size(), 2u);
  const size_t n = got[0].size();
  std::vector<std::vector<float>> p(2, std::vector<float>(n)), local_prev(2), residual(2, std::vector<float>(n, 0.0f));
  for (auto& pr : p) {
    for (size_t k = 0; k < n; ++k) pr[k] = 0.01f * static_cast<float>(k % 7);
  }
  std::vector<SgdMomentum> opt(2, SgdMomentum(n, 0.1f, 0.9f));
  std::vector<float> sum_prev;
  for (int step = 0; step < kSteps; ++step) {
    std::vector<std::vector<float>> local(2, std::vector<float>(n));
    for (int r = 0; r < 2; ++r) {
      for (size_t k = 0; k < n; ++k) local[r][k] = Gradient(p[r].data(), k, r, step);
      std::vector<float> g = local[r];
      if (step > 0) {
        for (size_t k = 0; k < n; ++k) g[k] = local[r][k] + (sum_prev[k] * 0.5f - local_prev[r][k]);
      }
      opt[r].Step(absl::MakeSpan(p[r]), g);
    }
    sum_prev = CompressedSum(GetParam(), local[0], local[1], &residual);
    local_prev = local;
  }
  ExpectBitEqual(got[0], p[0], "rank 0");
  ExpectBitEqual(got[1], p[1], "rank 1");
}

INSTANTIATE_TEST_SUITE_P(Codes, CompressedSync,
                         ::testing::Values(Compression::kBf16, Compression::kInt8, Compression::kInt4),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

TEST(CompressedSyncOptions, DilocoRefusesWanCompression) {
  auto comms = CreateCommunicators(1, TestConfig());
  ASSERT_TRUE(comms.ok()) << comms.status();
  GradientSyncOptions options;
  options.policy = SyncPolicy::kDiloco;
  options.wan_compression = Compression::kInt8;
  auto sync = GradientSync::Create(*(*comms)[0], kCounts, options);
  ASSERT_FALSE(sync.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(sync.status())) << sync.status();
}

}  // namespace
}  // namespace silk::training
