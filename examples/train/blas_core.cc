#include "examples/train/blas_core.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

extern "C" char* openblas_get_corename(void);

namespace silk::examples {
namespace {
constexpr char kFallbackVariable[] = "SILK_TRAIN_BLAS_FALLBACK";
}  // namespace

CpuVectors ThisCpuVectors() {
  __builtin_cpu_init();
  CpuVectors cpu;
  if (__builtin_cpu_supports("avx")) cpu.level = VectorLevel::kAvx;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) cpu.level = VectorLevel::kAvx2;
  // What OpenBLAS's SkylakeX kernels need.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd")) {
    cpu.level = VectorLevel::kAvx512;
    cpu.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  }
  return cpu;
}

std::string LoadedBlasCore() {
  const char* name = openblas_get_corename();
  return name == nullptr ? "" : name;
}

VectorLevel VectorLevelOfBlasCore(absl::string_view core) {
  const std::string name = absl::AsciiStrToLower(core);
  for (const char* avx512 : {"skylakex", "cooperlake", "sapphirerapids"}) {
    if (name == avx512) return VectorLevel::kAvx512;
  }
  for (const char* avx2 : {"haswell", "zen", "excavator", "skylake"}) {
    if (name == avx2) return VectorLevel::kAvx2;
  }
  for (const char* avx : {"sandybridge", "bulldozer", "piledriver", "steamroller"}) {
    if (name == avx) return VectorLevel::kAvx;
  }
  return VectorLevel::kSse;  // prescott, core2, penryn, nehalem, atom, ...
}

std::string BetterBlasCore(absl::string_view core, const CpuVectors& cpu) {
  if (VectorLevelOfBlasCore(core) >= cpu.level) return "";
  switch (cpu.level) {
    case VectorLevel::kAvx512: return cpu.avx512_bf16 ? "Cooperlake" : "SkylakeX";
    case VectorLevel::kAvx2: return "Haswell";
    case VectorLevel::kAvx: return "Sandybridge";
    case VectorLevel::kSse: return "";
  }
  return "";
}

void RestartWithBetterBlasCoreIfNeeded(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice, or our restart's
  const std::string loaded = LoadedBlasCore();
  const std::string better = BetterBlasCore(loaded, ThisCpuVectors());
  if (better.empty()) return;
  setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
  setenv(kFallbackVariable, loaded.c_str(), 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "silk-train: warning: OpenBLAS runs its %s kernels on a CPU that can run %s ones, and "
               "restarting with OPENBLAS_CORETYPE=%s failed (%s); set OPENBLAS_CORETYPE=%s yourself\n",
               loaded.c_str(), better.c_str(), better.c_str(), std::strerror(errno), better.c_str());
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kFallbackVariable);
}

std::string BlasRestartNotice() {
  const char* fallback = std::getenv(kFallbackVariable);
  const char* chosen = std::getenv("OPENBLAS_CORETYPE");
  if (fallback == nullptr || chosen == nullptr) return "";
  return absl::StrFormat(
      "OpenBLAS did not know this CPU and chose its %s kernels; silk-train restarted itself with "
      "OPENBLAS_CORETYPE=%s (now running %s). Set OPENBLAS_CORETYPE to choose yourself.",
      fallback, chosen, LoadedBlasCore());
}

}  // namespace silk::examples
