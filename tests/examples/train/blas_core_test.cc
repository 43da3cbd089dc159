#include "examples/train/blas_core.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_format.h"

namespace silk::examples {
namespace {

constexpr CpuVectors kAvx512Bf16{VectorLevel::kAvx512, true};
constexpr CpuVectors kAvx512{VectorLevel::kAvx512, false};
constexpr CpuVectors kAvx2{VectorLevel::kAvx2, false};
constexpr CpuVectors kSse{VectorLevel::kSse, false};

TEST(BlasCore, NamesTheLevelOfOpenBlasCores) {
  EXPECT_EQ(VectorLevelOfBlasCore("Prescott"), VectorLevel::kSse);
  EXPECT_EQ(VectorLevelOfBlasCore("Nehalem"), VectorLevel::kSse);
  EXPECT_EQ(VectorLevelOfBlasCore("Sandybridge"), VectorLevel::kAvx);
  EXPECT_EQ(VectorLevelOfBlasCore("Haswell"), VectorLevel::kAvx2);
  EXPECT_EQ(VectorLevelOfBlasCore("Zen"), VectorLevel::kAvx2);
  EXPECT_EQ(VectorLevelOfBlasCore("SkylakeX"), VectorLevel::kAvx512);
  EXPECT_EQ(VectorLevelOfBlasCore("cooperlake"), VectorLevel::kAvx512);
  EXPECT_EQ(VectorLevelOfBlasCore("something new"), VectorLevel::kSse);
}

TEST(BlasCore, SuggestsTheWidestKernelsTheCpuRunsOnlyWhenTheLoadedOnesAreNarrower) {
  EXPECT_EQ(BetterBlasCore("Prescott", kAvx512Bf16), "Cooperlake");
  EXPECT_EQ(BetterBlasCore("Prescott", kAvx512), "SkylakeX");
  EXPECT_EQ(BetterBlasCore("Haswell", kAvx512), "SkylakeX");
  EXPECT_EQ(BetterBlasCore("Nehalem", kAvx2), "Haswell");
  EXPECT_EQ(BetterBlasCore("SkylakeX", kAvx512Bf16), "");  // already AVX-512
  EXPECT_EQ(BetterBlasCore("Haswell", kAvx2), "");
  EXPECT_EQ(BetterBlasCore("Zen", kAvx2), "");
  EXPECT_EQ(BetterBlasCore("Prescott", kSse), "");
}

// silk-train itself, one process (MPI singleton), bounded to 60 s: which kernels it computes with.
// In sanitizer builds MPI_Init's never-freed allocations would fail it at exit
// (the vcluster tests turn leak checks off for silk-train the same way).
std::string BlasCoreOfSilkTrain(const std::string& environment) {
  const std::string json = absl::StrFormat("%s/blas_core_test_%d.json", ::testing::TempDir(), getpid());
  const std::string command = absl::StrFormat(
      "timeout 60 env -u OPENBLAS_CORETYPE -u SILK_TRAIN_BLAS_FALLBACK ASAN_OPTIONS=detect_leaks=0 %s %s --steps 2 "
      "--hidden 32 --batch 8 --quiet --json %s",
      environment, SILK_TRAIN_PATH, json);
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(json);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(json.c_str());
  const std::string key = "\"blas_core\":\"";
  const size_t at = text.str().find(key);
  if (at == std::string::npos) return "(no blas_core in " + json + ")";
  const size_t begin = at + key.size();
  return text.str().substr(begin, text.str().find('"', begin) - begin);
}

TEST(BlasCore, SilkTrainComputesWithKernelsAsWideAsTheCpu) {
  const std::string core = BlasCoreOfSilkTrain("");
  EXPECT_EQ(BetterBlasCore(core, ThisCpuVectors()), "") << "silk-train ran OpenBLAS's " << core << " kernels";
}

TEST(BlasCore, TheUsersOwnCoreTypeWins) {
  EXPECT_EQ(BlasCoreOfSilkTrain("OPENBLAS_CORETYPE=Prescott"), "Prescott");
}

}  // namespace
}  // namespace silk::examples
