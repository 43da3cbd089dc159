// Uses the installed headers and library: one rank, one all-reduce, and the
// training runtime's headers (GradientSync is exported by the library).
#include <cstdio>

#include "collectives/collectives.h"
#include "training/gradient_sync.h"

int main() {
  auto comm = silk::Communicator::CreateDefault();
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", std::string(comm.status().message()).c_str());
    return 1;
  }
  silk::training::GradientSyncOptions sync_options;
  (void)sync_options;
  float value = 21.0f, result = 0.0f;
  silk::AllreduceOptions options;
  options.input = &value;
  options.output = &result;
  options.count = 1;
  absl::Status status = silk::Allreduce(**comm, options);
  std::printf("consumer: %s, result %.1f\n", status.ok() ? "ok" : std::string(status.message()).c_str(), result);
  return status.ok() && result == 21.0f ? 0 : 1;
}
