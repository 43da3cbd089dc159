// A rank of the multi-process collective check: joins the job (MPI under
// mpirun, the torchrun variables otherwise) and runs every collective with
// every type, reduction, placement and algorithm at a few sizes, checking each
// result against the reference, then that the ranks that should hold the same
// bits do (their hashes are all-gathered and compared), and last a few large
// float32 calls through the default algorithm choice.
//
//   suite_check [--counts 0,1,5,3000]
//
// Exit codes: 0 all correct, 1 anything else (the first problem is printed).
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "collectives/collectives.h"
#include "tests/collectives/suite_cases.h"

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> counts = {0, 1, 5, 3000};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--counts" && i + 1 < argc) {
      counts.clear();
      for (auto piece : absl::StrSplit(argv[++i], ',')) {
        size_t c;
        if (!absl::SimpleAtoi(piece, &c)) return Fail("bad --counts");
        counts.push_back(c);
      }
    } else {
      return Fail("unknown argument " + arg);
    }
  }
  auto created = silk::Communicator::CreateDefault();
  if (!created.ok()) return Fail(std::string(created.status().message()));
  silk::Communicator& comm = **created;
  const int rank = comm.rank(), n = comm.size();

  using silk::testing::Op;
  std::vector<silk::testing::Case> cases;
  for (Op op : {Op::kAllreduce, Op::kReduceScatter, Op::kReduce, Op::kAllgather, Op::kAllgatherv, Op::kBroadcast,
                Op::kAlltoall}) {
    auto more = silk::testing::CasesFor(op, n, counts);
    cases.insert(cases.end(), more.begin(), more.end());
  }
  // Large calls with the algorithm left to the size-based choice (the ring, here).
  for (Op op : {Op::kAllreduce, Op::kReduceScatter, Op::kReduce, Op::kAllgather, Op::kBroadcast, Op::kAlltoall}) {
    cases.push_back({op, silk::DataType::kFloat32, silk::ReduceOp::kSum, false, size_t{600000} / n, "", n - 1, 99});
  }

  std::vector<int64_t> hashes(cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    uint64_t hash = 0;
    absl::Status s = silk::testing::RunCase(comm, cases[k], &hash);
    if (!s.ok()) {
      comm.Abort(s);  // the other ranks stop at once instead of waiting for this one
      return Fail(std::string(s.message()));
    }
    hashes[k] = static_cast<int64_t>(hash);
  }
  // Same bits everywhere: gather every rank's hashes and compare them.
  std::vector<int64_t> all(hashes.size() * n);
  silk::AllgatherOptions gather;
  gather.input = hashes.data();
  gather.output = all.data();
  gather.count = hashes.size();
  gather.type = silk::DataType::kInt64;
  if (absl::Status s = silk::Allgather(comm, gather); !s.ok()) return Fail(std::string(s.message()));
  for (int q = 0; q < n; ++q) {
    for (size_t k = 0; k < cases.size(); ++k) {
      if (all[q * cases.size() + k] != hashes[k]) {
        return Fail(absl::StrFormat("rank %d and rank %d hold different bits after %s", rank, q, cases[k].Describe()));
      }
    }
  }
  if (absl::Status s = silk::Barrier(comm); !s.ok()) return Fail(std::string(s.message()));
  std::printf("OK rank %d/%d: %d calls checked\n", rank, n, static_cast<int>(cases.size()));
  return 0;
}
