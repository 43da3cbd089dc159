// One rank of a fast-path fault check (fast_path_test.cc), started with the
// environment bootstrap:
//
//   fast_path_check --die-rank R [--region NAME]
//
// Every rank runs a few small all-reduces (8 bytes: on one node, the
// calling-thread path through shared memory unless SILK_FAST_PATH=0; with
// regions, whose node phases take that memory), then
// rank R exits abruptly while the others wait for it in the next one. Each of
// them must fail, naming rank R, and exits 3 (prints how long it waited).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"

namespace {

int Fail(const std::string& why) {
  std::fprintf(stderr, "FAIL: %s\n", why.c_str());
  return 1;
}

absl::Status SmallAllreduce(silk::Communicator& comm, double* value) {
  silk::AllreduceOptions o;
  o.input = o.output = value;
  o.count = 1;
  o.type = silk::DataType::kFloat64;
  return silk::Allreduce(comm, o);
}

}  // namespace

int main(int argc, char** argv) {
  int die_rank = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--die-rank" && i + 1 < argc && absl::SimpleAtoi(argv[i + 1], &die_rank)) ++i;
    if (std::string(argv[i]) == "--region" && i + 1 < argc) setenv("SILK_REGION", argv[++i], 1);
  }
  if (die_rank < 0) return Fail("usage: fast_path_check --die-rank R [--region NAME]");
  auto created = silk::Communicator::CreateDefault();
  if (!created.ok()) return Fail(std::string(created.status().message()));
  silk::Communicator& comm = **created;
  for (int i = 0; i < 20; ++i) {
    double value = comm.rank();
    if (absl::Status s = SmallAllreduce(comm, &value); !s.ok()) return Fail(std::string(s.message()));
    if (value != comm.size() * (comm.size() - 1) / 2.0) return Fail("wrong sum");
  }
  if (comm.rank() == die_rank) {
    usleep(50000);  // the others are asleep in the next call by now
    std::fprintf(stderr, "rank %d exiting abruptly\n", comm.rank());
    _exit(9);
  }
  const absl::Time start = absl::Now();
  double value = 1;
  absl::Status status = SmallAllreduce(comm, &value);
  if (status.ok()) return Fail("the all-reduce succeeded although a rank died");
  std::printf("rank %d detected the failure after %.3f s: %s\n", comm.rank(),
              absl::ToDoubleSeconds(absl::Now() - start), std::string(status.message()).c_str());
  std::fflush(stdout);
  _exit(3);  // skip orderly teardown: the job is broken
}
