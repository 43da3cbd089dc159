// Which OpenBLAS kernels silk-train computes with, and a fix for the case
// where OpenBLAS chose badly.
//
// A dynamic-arch OpenBLAS picks its kernels for the CPU it finds when it
// loads. One older than the CPU does not know the model and falls back to the
// Prescott (SSE3) kernels: Debian 12's 0.3.21 on Emerald Rapids (family 6,
// model 207) runs sgemm at about 20 GFLOP/s per core instead of 100-120 with
// its Cooperlake kernels. The choice is made only once, while the library
// loads, from OPENBLAS_CORETYPE, so silk-train re-executes itself with that
// variable set before doing anything else.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace silk::examples {

// The widest vector instructions a CPU (or a set of OpenBLAS kernels) uses.
enum class VectorLevel { kSse = 0, kAvx = 1, kAvx2 = 2, kAvx512 = 3 };

struct CpuVectors {
  VectorLevel level = VectorLevel::kSse;
  bool avx512_bf16 = false;
};

CpuVectors ThisCpuVectors();

// The kernels the loaded OpenBLAS runs on (openblas_get_corename()).
std::string LoadedBlasCore();

// The level an OpenBLAS core name stands for; unknown names count as kSse.
VectorLevel VectorLevelOfBlasCore(absl::string_view core);

// A core type (an OPENBLAS_CORETYPE value) that `cpu` can run and that uses
// wider vectors than `core`, or "" when `core` already matches the CPU.
std::string BetterBlasCore(absl::string_view core, const CpuVectors& cpu);

// Call first in main. When OPENBLAS_CORETYPE is unset and the loaded OpenBLAS
// fell back to kernels narrower than the CPU's, sets OPENBLAS_CORETYPE and
// SILK_TRAIN_BLAS_FALLBACK (the core it had chosen) and execs the program
// again; returns when there is nothing to fix or the exec failed (with a
// warning on stderr). The user's own OPENBLAS_CORETYPE always wins.
void RestartWithBetterBlasCoreIfNeeded(char** argv);

// After a restart: a sentence saying which core OpenBLAS had chosen and which
// one runs now; "" when there was no restart.
std::string BlasRestartNotice();

}  // namespace silk::examples
