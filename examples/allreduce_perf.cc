// allreduce_perf: Silk's counterpart of nccl-tests. Same flags, same table,
// same bandwidth formulas, so its numbers read like NCCL's. The flags are
// kUsage below (what --help prints).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/core/cluster_spec.h"
#include "collectives/collectives.h"
#include "collectives/kernels/float16.h"
#include "runtime/bootstrap/bootstrap.h"
#include "runtime/communicator.h"
#include "runtime/core/config.h"
#include "runtime/transport/socket.h"
#ifdef SILK_HAVE_GLOO
#include "examples/perf/gloo_baseline.h"
#endif

namespace {

constexpr char kUsage[] = R"(usage:
  mpirun -np 4 allreduce_perf -b 8 -e 128M -f 2 [-n 20] [-w 5] [-c 1]
         [-d float] [-o sum] [-r 0] [--op allreduce] [--algo ring]
         [--lanes 2] [--impl silk|mpi|silk,mpi] [--json results.jsonl]

Flags (sizes take K, M, G suffixes, powers of 1024):
  -b/--minbytes, -e/--maxbytes   message sizes, as nccl-tests counts them
                                 (for reduce_scatter, allgather and alltoall:
                                 the whole buffer, size() blocks)
  -f/--stepfactor                multiply the size by this each row (>= 2)
  -n/--iters, -w/--warmup_iters  timed and untimed calls per row and placement
  --min-seconds S                time at least about S seconds per row and placement:
                                 more calls than -n where the warm-up shows they are
                                 short (0, the default: exactly -n, as nccl-tests).
                                 Across a WAN, back-to-back small calls fall into step
                                 half a round trip apart between the regions: on each
                                 side calls then take a round trip and nothing by turns
                                 (R/2 on average), so few calls misread the latency
  -c/--check 0|1                 check every row's result (#wrong: wrong elements over all ranks)
  -d/--datatype                  float double half bfloat16 int8 uint8 int32 int64
  -o/--redop                     sum prod min max avg
  -r/--root                      root of broadcast and reduce
  --op                           allreduce reduce_scatter allgather broadcast reduce alltoall
                                 barrier (one row, sizes ignored)
  --algo NAME                    Silk's algorithm for every call (ring, rhd, tree, pairwise)
  --lanes N                      TCP connections per pair of ranks (SILK_LANES)
  --impl LIST                    silk (default), mpi (OpenMPI's own collectives on the
                                 same buffers), or silk,mpi for both: rows then alternate
                                 and end with the implementation's name
  --wan-compression LIST         Silk's all-reduce across regions with its WAN hop
                                 compressed: none, bf16, int8, int4, or a list (none,int8,int4)
                                 timed side by side in one run, rows named silk-int8 etc.
                                 Inputs are then real values (not small integers) and, with
                                 -c 1, each row reports after its columns the error of the
                                 result against a float64 reference, maxrel = max |err| /
                                 max |ref| and rmsrel = sqrt(sum err^2 / sum ref^2), and
                                 same = 1 when every rank holds the same bits; t/bnd is the
                                 time over the uncompressed bound S/B + R/2
  --within-region 0|1            Silk's all-reduce among each region's ranks only (nothing
                                 crosses the WAN): the floor the regions' own exact phases
                                 set under any compression; needs -c 0
  --blocking 0|1                 Silk's calls: 1 (default) the blocking API, one call at
                                 a time, as MPI_Allreduce and Gloo are timed (a blocking
                                 call on one node runs small collectives on the caller's
                                 thread); 0 the async API, every timed call queued, then
                                 all waited for (nccl-tests' way)
  -l/--latency 0|1|2              after the timed calls, time as many calls again one by
                                 one and report, as OSU does, the slowest rank's min,
                                 median and p99 latency per call (after the columns: lat
                                 min/med/p99): 0 never, 1 (default) rows up to 1 MiB,
                                 2 every row
  --latency-barrier 0|1          -l's calls: 1 (default) each after a barrier, timed alone,
                                 as OSU's collective benchmarks do; 0 back to back (a rank
                                 that waits for no other, like MPI's broadcast root, then
                                 times its own pace rather than the call's latency)
  --json FILE                    also write JSON Lines, one object per row and placement:
                                 {"impl","op","bytes","count","type","redop","time_us",
                                  "algbw","busbw","wrong","in_place","wan_bytes","bound_us",
                                  "iters","wan_compression","max_rel_err","rms_rel_err",
                                  "identical","lat_min_us","lat_median_us","lat_p99_us"}
                                 (wrong: null unchecked; lat_*: null when not measured)

Launch with mpirun (Silk then bootstraps through MPI, and this tool uses MPI
for its timing barriers) or torchrun-style (MASTER_ADDR, MASTER_PORT, RANK,
WORLD_SIZE; then --impl mpi is an error). The time of a row is the mean
time per call of the slowest rank. MPI has no 16-bit floating-point types
and no average: such reductions are skipped for --impl mpi, with a note
(broadcast, allgather and alltoall move 16-bit values as MPI_UINT16_T).)";

using silk::DataType;
using silk::ReduceOp;

enum class Collective { kAllreduce, kReduceScatter, kAllgather, kBroadcast, kReduce, kAlltoall, kBarrier };

struct NamedCollective {
  const char* name;
  Collective collective;
};
constexpr NamedCollective kCollectives[] = {
    {"allreduce", Collective::kAllreduce}, {"reduce_scatter", Collective::kReduceScatter},
    {"allgather", Collective::kAllgather}, {"broadcast", Collective::kBroadcast},
    {"reduce", Collective::kReduce},       {"alltoall", Collective::kAlltoall},
    {"barrier", Collective::kBarrier},
};

const char* CollectiveName(Collective c) {
  for (const auto& nc : kCollectives) {
    if (nc.collective == c) return nc.name;
  }
  return "?";
}

bool Reduces(Collective c) {
  return c == Collective::kAllreduce || c == Collective::kReduceScatter || c == Collective::kReduce;
}
bool Rooted(Collective c) { return c == Collective::kBroadcast || c == Collective::kReduce; }

// nccl-tests' bus bandwidth factors: what each rank's links carry relative to the buffer.
double BusFactor(Collective c, int n) {
  switch (c) {
    case Collective::kAllreduce: return 2.0 * (n - 1) / n;
    case Collective::kReduceScatter:
    case Collective::kAllgather:
    case Collective::kAlltoall: return static_cast<double>(n - 1) / n;
    case Collective::kBroadcast:
    case Collective::kReduce: return 1.0;
    case Collective::kBarrier: return 0.0;
  }
  return 1.0;
}

struct NamedType {
  const char* name;
  DataType type;
};
// nccl-tests' names first, then aliases.
constexpr NamedType kTypes[] = {
    {"float", DataType::kFloat32},     {"double", DataType::kFloat64},  {"half", DataType::kFloat16},
    {"bfloat16", DataType::kBFloat16}, {"int8", DataType::kInt8},       {"uint8", DataType::kUint8},
    {"int32", DataType::kInt32},       {"int64", DataType::kInt64},     {"float32", DataType::kFloat32},
    {"float64", DataType::kFloat64},   {"float16", DataType::kFloat16}, {"bf16", DataType::kBFloat16},
    {"int", DataType::kInt32},
};

const char* TypeName(DataType t) {
  for (const auto& nt : kTypes) {
    if (nt.type == t) return nt.name;
  }
  return "?";
}

struct Flags {
  size_t min_bytes = 32 << 20;
  size_t max_bytes = 32 << 20;
  size_t step_factor = 2;
  int iters = 20;
  int warmup = 5;
  double min_seconds = 0;
  bool check = true;
  DataType type = DataType::kFloat32;
  ReduceOp redop = ReduceOp::kSum;
  int root = 0;
  Collective collective = Collective::kAllreduce;
  std::string algorithm;
  int lanes = 0;  // 0: SILK_LANES or the default
  std::vector<std::string> impls = {"silk"};
  std::string json;
  std::string spec;  // cluster spec for the WAN bound (default: SILK_CLUSTER_SPEC's)
  std::vector<silk::Compression> wan_compression = {silk::Compression::kNone};
  bool within_region = false;
  bool blocking = true;  // Silk's blocking API (--blocking)
  int latency = 1;  // per-call latency distribution: 0 never, 1 rows up to kLatencyMaxBytes, 2 every row
  bool latency_barrier = true;  // -l's calls each start from a barrier (OSU's way), or run back to back
  // Real-valued inputs (with --wan-compression): the error is then measured.
  bool real_inputs() const {
    return wan_compression.size() > 1 || wan_compression[0] != silk::Compression::kNone;
  }
};

bool ParseSize(const std::string& text, size_t* out) {
  if (text.empty()) return false;
  size_t multiplier = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'K':
    case 'k': multiplier = size_t{1} << 10; break;
    case 'M':
    case 'm': multiplier = size_t{1} << 20; break;
    case 'G':
    case 'g': multiplier = size_t{1} << 30; break;
    default: break;
  }
  if (multiplier != 1) digits.pop_back();
  uint64_t value;
  if (!absl::SimpleAtoi(digits, &value)) return false;
  *out = value * multiplier;
  return true;
}

absl::Status ParseFlags(int argc, char** argv, Flags* flags) {
  auto bad = [](const std::string& flag, const std::string& value) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad value \"%s\" for %s (see --help)", value, flag));
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") return absl::CancelledError("help");
    if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrFormat("%s needs a value", flag));
    const std::string value = argv[++i];
    int number = 0;
    if (flag == "-b" || flag == "--minbytes") {
      if (!ParseSize(value, &flags->min_bytes)) return bad(flag, value);
    } else if (flag == "-e" || flag == "--maxbytes") {
      if (!ParseSize(value, &flags->max_bytes)) return bad(flag, value);
    } else if (flag == "-f" || flag == "--stepfactor") {
      if (!ParseSize(value, &flags->step_factor) || flags->step_factor < 2) return bad(flag, value);
    } else if (flag == "-n" || flag == "--iters") {
      if (!absl::SimpleAtoi(value, &flags->iters) || flags->iters < 1) return bad(flag, value);
    } else if (flag == "--min-seconds") {
      if (!absl::SimpleAtod(value, &flags->min_seconds) || !(flags->min_seconds >= 0) || flags->min_seconds > 3600) {
        return bad(flag, value);
      }
    } else if (flag == "-w" || flag == "--warmup_iters") {
      if (!absl::SimpleAtoi(value, &flags->warmup) || flags->warmup < 0) return bad(flag, value);
    } else if (flag == "-c" || flag == "--check") {
      if (!absl::SimpleAtoi(value, &number)) return bad(flag, value);
      flags->check = number != 0;
    } else if (flag == "-r" || flag == "--root") {
      if (!absl::SimpleAtoi(value, &flags->root)) return bad(flag, value);
    } else if (flag == "-d" || flag == "--datatype") {
      auto it = std::find_if(std::begin(kTypes), std::end(kTypes), [&](const NamedType& t) { return value == t.name; });
      if (it == std::end(kTypes)) return bad(flag, value);
      flags->type = it->type;
    } else if (flag == "-o" || flag == "--redop") {
      bool found = false;
      for (int op = 0; op < silk::kNumReduceOps; ++op) {
        if (value == silk::ReduceOpName(static_cast<ReduceOp>(op))) {
          flags->redop = static_cast<ReduceOp>(op);
          found = true;
        }
      }
      if (!found) return bad(flag, value);
    } else if (flag == "--op") {
      auto it = std::find_if(std::begin(kCollectives), std::end(kCollectives),
                             [&](const NamedCollective& c) { return value == c.name; });
      if (it == std::end(kCollectives)) return bad(flag, value);
      flags->collective = it->collective;
    } else if (flag == "--algo") {
      flags->algorithm = value;
    } else if (flag == "--lanes") {
      if (!absl::SimpleAtoi(value, &flags->lanes) || flags->lanes < 1) return bad(flag, value);
    } else if (flag == "--impl") {
      flags->impls = absl::StrSplit(value, ',');
      for (const std::string& impl : flags->impls) {
        if (impl != "silk" && impl != "mpi" && impl != "gloo") return bad(flag, value);
      }
    } else if (flag == "--json") {
      flags->json = value;
    } else if (flag == "--spec") {
      flags->spec = value;
    } else if (flag == "--blocking") {
      if (!absl::SimpleAtoi(value, &number) || number < 0 || number > 1) return bad(flag, value);
      flags->blocking = number != 0;
    } else if (flag == "-l" || flag == "--latency") {
      if (!absl::SimpleAtoi(value, &flags->latency) || flags->latency < 0 || flags->latency > 2) {
        return bad(flag, value);
      }
    } else if (flag == "--latency-barrier") {
      if (!absl::SimpleAtoi(value, &number) || number < 0 || number > 1) return bad(flag, value);
      flags->latency_barrier = number != 0;
    } else if (flag == "--within-region") {
      if (!absl::SimpleAtoi(value, &number)) return bad(flag, value);
      flags->within_region = number != 0;
    } else if (flag == "--wan-compression") {
      flags->wan_compression.clear();
      for (absl::string_view name : absl::StrSplit(value, ',')) {
        absl::StatusOr<silk::Compression> c = silk::ParseCompression(name);
        if (!c.ok()) return bad(flag, value);
        flags->wan_compression.push_back(*c);
      }
    } else {
      return absl::InvalidArgumentError(absl::StrFormat("unknown flag %s (see --help)", flag));
    }
  }
  if (flags->collective == Collective::kBarrier) flags->min_bytes = flags->max_bytes = 0;  // one row, no data
  if (flags->min_bytes > flags->max_bytes) return absl::InvalidArgumentError("-b is larger than -e");
  if (flags->within_region && (flags->check || flags->collective != Collective::kAllreduce)) {
    return absl::InvalidArgumentError("--within-region 1 needs --op allreduce and -c 0");
  }
  if (flags->real_inputs() && (flags->collective != Collective::kAllreduce || flags->type != DataType::kFloat32 ||
                               (flags->redop != ReduceOp::kSum && flags->redop != ReduceOp::kAvg))) {
    return absl::InvalidArgumentError("--wan-compression needs --op allreduce, -d float and -o sum or avg");
  }
  return absl::OkStatus();
}

// Where one row's data lives, in elements, as nccl-tests lays it out: `count`
// is the argument of the call, the in-place offsets point into one buffer.
struct Layout {
  size_t count = 0;
  size_t send = 0, recv = 0;
  size_t in_place_send = 0, in_place_recv = 0;
};

Layout LayoutFor(Collective c, size_t bytes, size_t elem, int n, int rank) {
  const size_t total = bytes / elem, block = total / n;
  switch (c) {
    case Collective::kReduceScatter: return {block, block * n, block, 0, rank * block};
    case Collective::kAllgather: return {block, block, block * n, rank * block, 0};
    case Collective::kAlltoall: return {block, block * n, block * n, 0, 0};
    default: return {total, total, total, 0, 0};
  }
}

// One call, as either implementation receives it.
struct Call {
  Collective collective;
  const void* input;
  void* output;
  bool in_place;
  size_t count;
  DataType type;
  ReduceOp redop;
  int root;
};

// The job as this tool sees it: MPI when mpirun launched it, Silk's communicator when needed.
class Job {
 public:
  static absl::StatusOr<std::unique_ptr<Job>> Start(const Flags& flags) {
    auto job = std::unique_ptr<Job>(new Job());
    job->mpi_ = silk::bootstrap::LaunchedByMpi();
    if (job->mpi_) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
      MPI_Comm_rank(MPI_COMM_WORLD, &job->rank_);
      MPI_Comm_size(MPI_COMM_WORLD, &job->size_);
    }
    const bool wants_silk = std::find(flags.impls.begin(), flags.impls.end(), "silk") != flags.impls.end();
    if (wants_silk || !job->mpi_) {
      auto config = silk::Config::FromEnvironment();
      if (!config.ok()) return config.status();
      if (flags.lanes > 0) config->lanes = flags.lanes;
      auto comm =
          job->mpi_ ? silk::Communicator::CreateFromMpi(*config) : silk::Communicator::CreateFromEnvironment(*config);
      if (!comm.ok()) return comm.status();
      job->comm_ = std::move(*comm);
      job->rank_ = job->comm_->rank();
      job->size_ = job->comm_->size();
    }
    return job;
  }

  ~Job() {
    comm_.reset();  // Silk's MPI bootstrap is done with MPI before it is finalised
    if (mpi_) MPI_Finalize();
  }

  bool mpi() const { return mpi_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  silk::Communicator* comm() { return comm_.get(); }

  absl::Status Barrier() {
    if (mpi_) return MpiStatus(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    return silk::Barrier(*comm_);
  }
  absl::StatusOr<double> Max(double value) {
    if (mpi_) {
      double result = 0;
      if (auto s = MpiStatus(MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
          !s.ok()) {
        return s;
      }
      return result;
    }
    if (auto s = silk::Allreduce(*comm_, {&value, &value, 1, DataType::kFloat64, ReduceOp::kMax, {}, ""}); !s.ok()) {
      return s;
    }
    return value;
  }
  absl::StatusOr<int64_t> Sum(int64_t value) {
    if (mpi_) {
      int64_t result = 0;
      if (auto s = MpiStatus(MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
          !s.ok()) {
        return s;
      }
      return result;
    }
    if (auto s = silk::Allreduce(*comm_, {&value, &value, 1, DataType::kInt64, ReduceOp::kSum, {}, ""}); !s.ok()) {
      return s;
    }
    return value;
  }
  // Ends the job on every rank now: a rank that failed must not leave the others waiting.
  [[noreturn]] void Die(const absl::Status& status) {
    std::fprintf(stderr, "allreduce_perf: FAILED on rank %d: %s\n", rank_, std::string(status.message()).c_str());
    std::fflush(stderr);
    if (comm_) comm_->Abort(status);
    if (mpi_) MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
  }

  static absl::Status MpiStatus(int code, const char* what) {
    if (code == MPI_SUCCESS) return absl::OkStatus();
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    return absl::InternalError(absl::StrFormat("%s: %s", what, std::string(text, length)));
  }

 private:
  Job() = default;
  bool mpi_ = false;
  int rank_ = 0, size_ = 1;
  std::unique_ptr<silk::Communicator> comm_;
};

// An implementation of the collectives under test.
class Impl {
 public:
  virtual ~Impl() = default;
  virtual const char* name() const = 0;
  // Why this configuration cannot run ("" if it can).
  virtual std::string Unsupported(const Flags& flags) const { return ""; }
  // Where the result of an in-place call starts in the buffer.
  virtual size_t InPlaceOutput(const Layout& layout, Collective c) const { return layout.in_place_recv; }
  // Starts a call; Finish waits for every call started since the last Finish.
  virtual absl::Status Start(const Call& call) = 0;
  virtual absl::Status Finish() = 0;
};

class SilkImpl : public Impl {
 public:
  SilkImpl(silk::Communicator* comm, std::string algorithm, silk::Compression compression = silk::Compression::kNone,
           bool within_region = false)
      : comm_(comm),
        algorithm_(std::move(algorithm)),
        compression_(compression),
        within_region_(within_region),
        name_(compression == silk::Compression::kNone ? "silk"
                                                      : std::string("silk-") + silk::CompressionName(compression)) {}
  const char* name() const override { return name_.c_str(); }
  silk::Compression compression() const { return compression_; }

  absl::Status Start(const Call& c) override {
    if (blocking_) return RunBlocking(c);
    absl::StatusOr<silk::WorkPtr> work;
    switch (c.collective) {
      case Collective::kAllreduce: {
        work = silk::AllreduceAsync(*comm_, AllreduceOptionsFor(c));
        break;
      }
      case Collective::kReduceScatter:
        work = silk::ReduceScatterAsync(*comm_, {c.input, c.output, c.count, c.type, c.redop, {}, algorithm_});
        break;
      case Collective::kAllgather:
        work = silk::AllgatherAsync(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
        break;
      case Collective::kBroadcast:
        work = silk::BroadcastAsync(*comm_, {c.input, c.output, c.count, c.type, c.root, {}, algorithm_});
        break;
      case Collective::kReduce:
        work = silk::ReduceAsync(*comm_, {c.input, c.output, c.count, c.type, c.redop, c.root, {}, algorithm_});
        break;
      case Collective::kAlltoall:
        work = silk::AlltoallAsync(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
        break;
      case Collective::kBarrier: work = silk::BarrierAsync(*comm_, {{}, algorithm_}); break;
    }
    if (!work.ok()) return work.status();
    pending_.push_back(*work);
    return absl::OkStatus();
  }

  absl::Status Finish() override {
    absl::Status first;
    for (const auto& work : pending_) first.Update(work->Wait());
    pending_.clear();
    return first;
  }

  // --blocking 1: the blocking calls, one at a time, as MPI's and Gloo's are timed.
  void set_blocking(bool blocking) { blocking_ = blocking; }

 private:
  silk::AllreduceOptions AllreduceOptionsFor(const Call& c) const {
    silk::AllreduceOptions o{c.input, c.output, c.count, c.type, c.redop, {}, algorithm_};
    o.wan_compression = compression_;
    o.within_region = within_region_;
    return o;
  }

  absl::Status RunBlocking(const Call& c) {
    switch (c.collective) {
      case Collective::kAllreduce: return silk::Allreduce(*comm_, AllreduceOptionsFor(c));
      case Collective::kReduceScatter:
        return silk::ReduceScatter(*comm_, {c.input, c.output, c.count, c.type, c.redop, {}, algorithm_});
      case Collective::kAllgather:
        return silk::Allgather(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
      case Collective::kBroadcast:
        return silk::Broadcast(*comm_, {c.input, c.output, c.count, c.type, c.root, {}, algorithm_});
      case Collective::kReduce:
        return silk::Reduce(*comm_, {c.input, c.output, c.count, c.type, c.redop, c.root, {}, algorithm_});
      case Collective::kAlltoall:
        return silk::Alltoall(*comm_, {c.input, c.output, c.count, c.type, {}, algorithm_});
      case Collective::kBarrier: return silk::Barrier(*comm_, {{}, algorithm_});
    }
    return absl::InternalError("unknown collective");
  }

  bool blocking_ = true;
  silk::Communicator* comm_;
  std::string algorithm_;
  silk::Compression compression_;
  bool within_region_;
  std::string name_;
  std::vector<silk::WorkPtr> pending_;
};

class MpiImpl : public Impl {
 public:
  const char* name() const override { return "mpi"; }

  std::string Unsupported(const Flags& flags) const override {
    const bool half = flags.type == DataType::kFloat16 || flags.type == DataType::kBFloat16;
    if (Reduces(flags.collective) && half) {
      return absl::StrFormat("MPI has no %s type to reduce", TypeName(flags.type));
    }
    if (Reduces(flags.collective) && flags.redop == ReduceOp::kAvg) return "MPI has no avg reduction";
    return "";
  }
  // MPI_Reduce_scatter_block with MPI_IN_PLACE leaves the result at the start of the buffer.
  size_t InPlaceOutput(const Layout& layout, Collective c) const override {
    return c == Collective::kReduceScatter ? 0 : layout.in_place_recv;
  }

  absl::Status Start(const Call& c) override {
    const MPI_Datatype type = MpiType(c.type);
    const int count = static_cast<int>(c.count);
    const void* send = c.in_place ? MPI_IN_PLACE : c.input;
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int code = MPI_SUCCESS;
    switch (c.collective) {
      case Collective::kAllreduce:
        code = MPI_Allreduce(send, c.output, count, type, MpiOp(c.redop), MPI_COMM_WORLD);
        break;
      case Collective::kReduceScatter:
        code = MPI_Reduce_scatter_block(send, c.output, count, type, MpiOp(c.redop), MPI_COMM_WORLD);
        break;
      case Collective::kAllgather:
        code = MPI_Allgather(send, count, type, c.output, count, type, MPI_COMM_WORLD);
        break;
      case Collective::kAlltoall: code = MPI_Alltoall(send, count, type, c.output, count, type, MPI_COMM_WORLD); break;
      case Collective::kBroadcast:
        // MPI broadcasts in one buffer: out of place, the root first copies its input there (as Silk does).
        if (rank == c.root && !c.in_place && count > 0) {
          std::memcpy(c.output, c.input, c.count * silk::DataTypeSize(c.type));
        }
        code = MPI_Bcast(c.output, count, type, c.root, MPI_COMM_WORLD);
        break;
      case Collective::kReduce:
        code = MPI_Reduce(c.in_place && rank != c.root ? c.input : send, c.output, count, type, MpiOp(c.redop), c.root,
                          MPI_COMM_WORLD);
        break;
      case Collective::kBarrier: code = MPI_Barrier(MPI_COMM_WORLD); break;
    }
    return Job::MpiStatus(code, CollectiveName(c.collective));
  }
  absl::Status Finish() override { return absl::OkStatus(); }

 private:
  static MPI_Datatype MpiType(DataType t) {
    switch (t) {
      case DataType::kFloat32: return MPI_FLOAT;
      case DataType::kFloat64: return MPI_DOUBLE;
      case DataType::kInt8: return MPI_INT8_T;
      case DataType::kUint8: return MPI_UINT8_T;
      case DataType::kInt32: return MPI_INT32_T;
      case DataType::kInt64: return MPI_INT64_T;
      default: return MPI_UINT16_T;  // 16-bit floats, moved but never reduced
    }
  }
  static MPI_Op MpiOp(ReduceOp op) {
    switch (op) {
      case ReduceOp::kProd: return MPI_PROD;
      case ReduceOp::kMin: return MPI_MIN;
      case ReduceOp::kMax: return MPI_MAX;
      default: return MPI_SUM;
    }
  }
};

// ---- Data and its check ----

// Element j of rank q's input: small integers, so that sums, products, minima
// and maxima are exact in every type, and position-dependent, so that data in
// the wrong place is noticed. Products: one rank in n contributes 2, the rest 1.
double InputValue(ReduceOp op, int n, int q, size_t j) {
  if (op == ReduceOp::kProd) return (q + j) % n == 0 ? 2.0 : 1.0;
  return static_cast<double>((q * 7 + j * 3) % 11 + 1);
}

void Store(DataType t, void* buffer, size_t i, double v) {
  char* at = static_cast<char*>(buffer) + i * silk::DataTypeSize(t);
  auto put = [&](auto x) { std::memcpy(at, &x, sizeof(x)); };
  switch (t) {
    case DataType::kFloat32: put(static_cast<float>(v)); break;
    case DataType::kFloat64: put(v); break;
    case DataType::kFloat16: put(silk::FloatToFloat16Bits(static_cast<float>(v))); break;
    case DataType::kBFloat16: put(silk::FloatToBFloat16Bits(static_cast<float>(v))); break;
    case DataType::kInt8: put(static_cast<int8_t>(v)); break;
    case DataType::kUint8: put(static_cast<uint8_t>(v)); break;
    case DataType::kInt32: put(static_cast<int32_t>(v)); break;
    case DataType::kInt64: put(static_cast<int64_t>(v)); break;
  }
}

double Load(DataType t, const void* buffer, size_t i) {
  const char* at = static_cast<const char*>(buffer) + i * silk::DataTypeSize(t);
  auto get = [&](auto x) {
    std::memcpy(&x, at, sizeof(x));
    return x;
  };
  switch (t) {
    case DataType::kFloat32: return get(float{});
    case DataType::kFloat64: return get(double{});
    case DataType::kFloat16: return silk::Float16BitsToFloat(get(uint16_t{}));
    case DataType::kBFloat16: return silk::BFloat16BitsToFloat(get(uint16_t{}));
    case DataType::kInt8: return get(int8_t{});
    case DataType::kUint8: return get(uint8_t{});
    case DataType::kInt32: return get(int32_t{});
    case DataType::kInt64: return static_cast<double>(get(int64_t{}));
  }
  return 0;
}

// The reduction of element j over every rank, wrapped into the type as the
// hardware would for integers.
double Expected(DataType t, ReduceOp op, int n, size_t j) {
  double acc = InputValue(op, n, 0, j);
  for (int q = 1; q < n; ++q) {
    const double x = InputValue(op, n, q, j);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kAvg: acc += x; break;
      case ReduceOp::kProd: acc *= x; break;
      case ReduceOp::kMin: acc = std::min(acc, x); break;
      case ReduceOp::kMax: acc = std::max(acc, x); break;
    }
  }
  const bool integer = t == DataType::kInt8 || t == DataType::kUint8 || t == DataType::kInt32 || t == DataType::kInt64;
  if (integer) {  // wrap as the type does, then (avg) divide with truncation
    const int bits = static_cast<int>(silk::DataTypeSize(t)) * 8;
    int64_t wrapped = static_cast<int64_t>(acc);
    if (bits < 64) {
      const uint64_t mask = (uint64_t{1} << bits) - 1;
      uint64_t u = static_cast<uint64_t>(wrapped) & mask;
      const bool is_signed = t != DataType::kUint8;
      if (is_signed && (u >> (bits - 1))) u |= ~mask;
      wrapped = static_cast<int64_t>(u);
    }
    if (op == ReduceOp::kAvg) wrapped /= n;
    return static_cast<double>(wrapped);
  }
  return op == ReduceOp::kAvg ? acc / n : acc;
}

bool Close(DataType t, double got, double want) {
  // Float sums of these small integers are exact until they outgrow the
  // mantissa (bfloat16: 256); beyond, allow the rounding of n additions.
  const double eps = t == DataType::kBFloat16 ? 1.0 / 128 : t == DataType::kFloat16 ? 1.0 / 1024 : 1e-6;
  return std::fabs(got - want) <= eps * std::max(1.0, std::fabs(want)) * 16;
}

// Element j of rank q's input under --wan-compression: values in (-4, 4) of
// every magnitude a gradient mixes, cheap to recompute for the reference.
float RealValue(int q, size_t j) {
  uint64_t h = (static_cast<uint64_t>(j) * 0x9E3779B97F4A7C15ull) ^ (static_cast<uint64_t>(q + 1) * 0xC2B2AE3D27D4EB4Full);
  h ^= h >> 29;
  const float unit = static_cast<float>(static_cast<int64_t>(h & 0xFFFF) - 32768) / 32768.0f;
  return unit * static_cast<float>(1 << ((h >> 16) & 1)) * (((h >> 17) & 7) == 0 ? 2.0f : 1.0f);
}

double RealExpected(const Flags& f, int n, size_t j) {
  double sum = 0;
  for (int q = 0; q < n; ++q) sum += RealValue(q, j);
  return f.redop == ReduceOp::kAvg ? sum / n : sum;
}

void FillInput(const Flags& f, int n, int rank, const Layout& l, void* input) {
  if (f.real_inputs()) {
    for (size_t j = 0; j < l.send; ++j) Store(f.type, input, j, RealValue(rank, j));
    return;
  }
  for (size_t j = 0; j < l.send; ++j) Store(f.type, input, j, InputValue(f.redop, n, rank, j));
}

// The all-reduce's error against the float64 reference, on this rank.
struct ErrorStats {
  double max_err = 0, max_ref = 0, sum_err2 = 0, sum_ref2 = 0;
  uint64_t hash = 14695981039346656037ull;  // FNV-1a of the result's bytes
};

ErrorStats MeasureError(const Flags& f, int n, const Layout& l, const void* output) {
  ErrorStats e;
  for (size_t i = 0; i < l.count; ++i) {
    const double got = Load(f.type, output, i), want = RealExpected(f, n, i), err = got - want;
    e.max_err = std::max(e.max_err, std::isnan(err) ? INFINITY : std::fabs(err));
    e.max_ref = std::max(e.max_ref, std::fabs(want));
    e.sum_err2 += err * err;
    e.sum_ref2 += want * want;
  }
  const auto* bytes = static_cast<const unsigned char*>(output);
  for (size_t i = 0; i < l.count * silk::DataTypeSize(f.type); ++i) e.hash = (e.hash ^ bytes[i]) * 1099511628211ull;
  return e;
}

// Wrong elements in this rank's output.
int64_t CountWrong(const Flags& f, int n, int rank, const Layout& l, const void* output) {
  int64_t wrong = 0;
  const DataType t = f.type;
  auto check = [&](size_t i, double want) { wrong += Close(t, Load(t, output, i), want) ? 0 : 1; };
  switch (f.collective) {
    case Collective::kAllreduce:
      for (size_t i = 0; i < l.count; ++i) check(i, f.real_inputs() ? RealExpected(f, n, i) : Expected(t, f.redop, n, i));
      break;
    case Collective::kReduce:
      if (rank != f.root) break;
      for (size_t i = 0; i < l.count; ++i) check(i, Expected(t, f.redop, n, i));
      break;
    case Collective::kReduceScatter:
      for (size_t i = 0; i < l.count; ++i) check(i, Expected(t, f.redop, n, rank * l.count + i));
      break;
    case Collective::kAllgather:
      for (int q = 0; q < n; ++q) {
        for (size_t i = 0; i < l.count; ++i) check(q * l.count + i, InputValue(f.redop, n, q, i));
      }
      break;
    case Collective::kBroadcast:
      for (size_t i = 0; i < l.count; ++i) check(i, InputValue(f.redop, n, f.root, i));
      break;
    case Collective::kAlltoall:
      for (int q = 0; q < n; ++q) {
        for (size_t i = 0; i < l.count; ++i) check(q * l.count + i, InputValue(f.redop, n, q, rank * l.count + i));
      }
      break;
    case Collective::kBarrier: break;  // nothing to hold
  }
  return wrong;
}

// ---- The table ----

struct Result {
  double time_us = 0, algbw = 0, busbw = 0;
  int64_t wrong = -1;        // -1: not checked
  int64_t wan_bytes = -1;    // per call, the larger direction across regions; -1: not counted
  double bound_us = 0;       // S/B + R/2 for all-reduce across two regions; 0: no WAN
  int iters = 0;             // timed calls (-n, or more under --min-seconds)
  // --wan-compression with -c 1: the error against float64 (-1: not measured), bit-identity across ranks.
  double max_rel_err = -1, rms_rel_err = -1;
  bool identical = true;
  // -l: the slowest rank's min, median and p99 of calls timed one by one (-1: not measured).
  double lat_min_us = -1, lat_median_us = -1, lat_p99_us = -1;
};

// The cross-region link that bounds an all-reduce (S/B + R/2), from the cluster spec.
struct WanModel {
  double rate_bps = 0;
  double rtt_s = 0;
  bool valid() const { return rate_bps > 0; }
  double BoundUs(size_t bytes) const { return valid() ? (bytes * 8.0 / rate_bps + rtt_s / 2) * 1e6 : 0; }
};

WanModel WanModelFor(const Flags& f, silk::Communicator* comm) {
  WanModel model;
  if (comm == nullptr || comm->num_regions() < 2) return model;
  silk::cluster::ClusterSpec loaded;
  const silk::cluster::ClusterSpec* spec = comm->spec();
  if (!f.spec.empty()) {
    auto from_file = silk::cluster::LoadSpec(f.spec);
    if (!from_file.ok()) return model;
    loaded = *from_file;
    spec = &loaded;
  }
  if (spec == nullptr) return model;
  const auto& placements = comm->placements();
  for (const auto& p : placements) {
    if (p.region == placements[0].region) continue;
    if (const silk::cluster::Link* link = silk::cluster::FindLink(*spec, placements[0].region, p.region)) {
      model.rate_bps = static_cast<double>(link->bandwidth_bps());
      model.rtt_s = link->rtt_ms() / 1000.0;
    }
    break;
  }
  return model;
}

// Payload bytes this rank has sent to ranks in other regions so far.
int64_t CrossRegionBytesSent(silk::Communicator* comm) {
  if (comm == nullptr) return 0;
  int64_t sent = 0;
  const auto& placements = comm->placements();
  for (const auto& p : placements) {
    if (p.region != placements[comm->rank()].region) sent += comm->transport().counters(p.rank).bytes_sent;
  }
  return sent;
}


#ifdef SILK_HAVE_GLOO
// Gloo's ring all-reduce on the same buffers (all-reduce only); its ranks meet
// through a Silk TCP store that rank 0 hosts and MPI announces.
class GlooImpl : public Impl {
 public:
  const char* name() const override { return "gloo"; }
  std::string Unsupported(const Flags& flags) const override {
    if (flags.collective != Collective::kAllreduce) return "the Gloo baseline runs all-reduce only";
    if (flags.type == DataType::kFloat16 || flags.type == DataType::kBFloat16) return "no 16-bit floats in the baseline";
    return "";
  }
  absl::Status Connect(Job& job) {
    if (!job.mpi()) return absl::InvalidArgumentError("--impl gloo needs a launch by mpirun");
    // Without --impl silk there is no communicator: the same settings from the environment.
    absl::StatusOr<silk::Config> config =
        job.comm() != nullptr ? absl::StatusOr<silk::Config>(job.comm()->config()) : silk::Config::FromEnvironment();
    if (!config.ok()) return config.status();
    auto address = silk::LocalIpv4Address(config->socket_ifname);
    if (!address.ok()) return address.status();
    // Rank 0's store address reaches the others through MPI.
    char host[64] = {};
    int port = 0;
    if (job.rank() == 0) {
      auto store = silk::perf::HostedStore::Start();
      if (!store.ok()) return store.status();
      store_ = std::move(*store);
      port = store_->port();
      std::snprintf(host, sizeof(host), "%s", address->c_str());
    }
    MPI_Bcast(host, sizeof(host), MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(&port, 1, MPI_INT, 0, MPI_COMM_WORLD);
    auto gloo = silk::perf::GlooBaseline::Connect(job.rank(), job.size(), host, static_cast<uint16_t>(port), *address,
                                                   config->timeout);
    if (!gloo.ok()) return gloo.status();
    gloo_ = std::move(*gloo);
    return absl::OkStatus();
  }
  absl::Status Start(const Call& c) override {
    const size_t bytes = c.count * silk::DataTypeSize(c.type);
    if (c.input != c.output && bytes > 0) std::memcpy(c.output, c.input, bytes);
    status_.Update(gloo_->Allreduce(c.output, c.count, c.type, c.redop));
    return absl::OkStatus();
  }
  absl::Status Finish() override {
    absl::Status s = status_;
    status_ = absl::OkStatus();
    return s;
  }

 private:
  std::unique_ptr<silk::perf::HostedStore> store_;
  std::unique_ptr<silk::perf::GlooBaseline> gloo_;
  absl::Status status_;
};
#endif

std::string TimeText(double us) {
  if (us >= 10000.0) return absl::StrFormat("%7.0f", us);
  if (us >= 100.0) return absl::StrFormat("%7.1f", us);
  return absl::StrFormat("%7.2f", us);
}

// A latency for the row's tail ("12.3") and for JSON ("12.345", or null when not measured).
std::string LatencyText(double us) { return us >= 100.0 ? absl::StrFormat("%.0f", us) : absl::StrFormat("%.1f", us); }
std::string Microseconds(double us) { return us < 0 ? "null" : absl::StrFormat("%.3f", us); }

void PrintHeader(const Flags& f, Job& job) {
  std::printf("# Silk allreduce_perf: op %s, %d ranks, impl %s%s\n", CollectiveName(f.collective), job.size(),
              absl::StrJoin(f.impls, ",").c_str(), job.mpi() ? " (launched by mpirun)" : "");
  std::printf("# minBytes %zu maxBytes %zu step: %zu(factor) warmup iters: %d iters: %d validation: %d algorithm: %s",
              f.min_bytes, f.max_bytes, f.step_factor, f.warmup, f.iters, f.check ? 1 : 0,
              f.algorithm.empty() ? "auto" : f.algorithm.c_str());
  if (f.min_seconds > 0) std::printf(" min seconds per row: %g", f.min_seconds);
  if (job.comm()) std::printf(" lanes: %d", job.comm()->config().lanes);
  std::printf("\n#\n");
  if (job.comm()) {
    for (const auto& p : job.comm()->placements()) {
      std::printf("#  Rank %2d on node %s region %s local rank %d\n", p.rank, p.node.c_str(),
                  p.region.empty() ? "-" : p.region.c_str(), p.local_rank);
    }
    std::printf("#\n");
  }
  const char* impl_column = f.impls.size() > 1 || f.wan_compression.size() > 1 ? "       impl" : "";
  std::printf("# %58s  %-30s  %-30s\n", "", "out-of-place", "in-place");
  if (job.comm() && job.comm()->num_regions() > 1) {
    std::printf("# across regions, after the columns: wan/S = bytes per direction over the WAN / S (Silk's counters),\n"
                "#   eff = (S/B + R/2) / time, with B and R from the cluster spec (all-reduce only)\n");
    std::printf("# network tiers measured at start-up: %s\n", job.comm()->tiers().ToString().c_str());
  }
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s%s\n", "size", "count", "type",
              "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong", impl_column);
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s\n", "(B)", "(elements)", "", "", "",
              "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
}

std::string Row(const Flags& f, size_t bytes, const Layout& l, const Result r[2], const char* impl, bool impl_column) {
  std::string row =
      absl::StrFormat("%12zu  %12zu  %8s  %6s  %6d", bytes, l.count, TypeName(f.type),
                      Reduces(f.collective) ? silk::ReduceOpName(f.redop) : "none", Rooted(f.collective) ? f.root : -1);
  for (int p = 0; p < 2; ++p) {
    absl::StrAppendFormat(&row, "  %s  %6.2f  %6.2f  %5s", TimeText(r[p].time_us), r[p].algbw, r[p].busbw,
                          r[p].wrong < 0 ? "N/A" : std::to_string(r[p].wrong));
  }
  if (impl_column) absl::StrAppendFormat(&row, "  %9s", impl);
  // Across regions: WAN bytes per direction over S, and the bound's share of the time.
  if (r[0].bound_us > 0 || r[0].wan_bytes >= 0) {
    absl::StrAppendFormat(&row, "  %6s  %5.2f",
                          r[0].wan_bytes < 0 ? "N/A" : absl::StrFormat("%6.3f", bytes ? 1.0 * r[0].wan_bytes / bytes : 0.0),
                          r[0].bound_us > 0 ? r[0].bound_us / r[0].time_us : 0.0);
  }
  if (f.real_inputs()) {
    absl::StrAppendFormat(&row, "  t/bnd %5.3f", r[0].bound_us > 0 ? r[0].time_us / r[0].bound_us : 0.0);
    if (r[0].max_rel_err >= 0) {
      absl::StrAppendFormat(&row, "  maxrel %.2e  rmsrel %.2e  same %d", r[0].max_rel_err, r[0].rms_rel_err,
                            r[0].identical && r[1].identical ? 1 : 0);
    }
  }
  if (r[0].lat_min_us >= 0) {
    absl::StrAppendFormat(&row, "  lat min/med/p99 %s/%s/%s us", LatencyText(r[0].lat_min_us),
                          LatencyText(r[0].lat_median_us), LatencyText(r[0].lat_p99_us));
  }
  return row;
}

std::string JsonLine(const Flags& f, const char* impl, size_t bytes, const Layout& l, const Result& r, bool in_place,
                     silk::Compression compression) {
  return absl::StrFormat(
      "{\"impl\":\"%s\",\"op\":\"%s\",\"bytes\":%zu,\"count\":%zu,\"type\":\"%s\",\"redop\":\"%s\",\"time_us\":%.3f,"
      "\"algbw\":%.6f,\"busbw\":%.6f,\"wrong\":%s,\"in_place\":%s,\"wan_bytes\":%s,\"bound_us\":%s,\"iters\":%d,"
      "\"wan_compression\":\"%s\",\"max_rel_err\":%s,\"rms_rel_err\":%s,\"identical\":%s,"
      "\"lat_min_us\":%s,\"lat_median_us\":%s,\"lat_p99_us\":%s}",
      impl, CollectiveName(f.collective), bytes, l.count, TypeName(f.type),
      Reduces(f.collective) ? silk::ReduceOpName(f.redop) : "none", r.time_us, r.algbw, r.busbw,
      r.wrong < 0 ? "null" : std::to_string(r.wrong), in_place ? "true" : "false",
      r.wan_bytes < 0 ? "null" : std::to_string(r.wan_bytes),
      r.bound_us > 0 ? absl::StrFormat("%.3f", r.bound_us) : "null", r.iters, silk::CompressionName(compression),
      r.max_rel_err < 0 ? "null" : absl::StrFormat("%.6g", r.max_rel_err),
      r.rms_rel_err < 0 ? "null" : absl::StrFormat("%.6g", r.rms_rel_err), r.identical ? "true" : "false",
      Microseconds(r.lat_min_us), Microseconds(r.lat_median_us), Microseconds(r.lat_p99_us));
}

// Buffers for the largest row, each a few bytes larger so misuse shows in the check.
struct Buffers {
  std::vector<char> send, recv, in_place;
};

// The worst rank's error, and whether every rank holds the same bits (the
// hash's low 52 bits travel exactly as a double: equal max and min).
absl::StatusOr<Result> WithError(const Flags& f, Job& job, const Layout& l, const void* output, Result r) {
  const ErrorStats e = MeasureError(f, job.size(), l, output);
  const double hash = static_cast<double>(e.hash & ((uint64_t{1} << 52) - 1));
  absl::StatusOr<double> max_rel = job.Max(e.max_ref > 0 ? e.max_err / e.max_ref : 0);
  absl::StatusOr<double> rms_rel = job.Max(e.sum_ref2 > 0 ? std::sqrt(e.sum_err2 / e.sum_ref2) : 0);
  absl::StatusOr<double> high = job.Max(hash), low = job.Max(-hash);
  for (const auto* s : {&max_rel, &rms_rel, &high, &low}) {
    if (!s->ok()) return s->status();
  }
  r.max_rel_err = *max_rel;
  r.rms_rel_err = *rms_rel;
  r.identical = *high == -*low;
  r.wrong = r.identical ? 0 : 1;  // a result that differs between ranks is wrong, whatever its error
  return r;
}

// -l: `iters` calls timed one by one; the slowest rank's min, median and p99.
constexpr size_t kLatencyMaxBytes = size_t{1} << 20;
absl::Status MeasureLatency(Job& job, int iters, bool barrier_each, const std::function<absl::Status(int)>& run,
                            Result& r) {
  if (auto s = job.Barrier(); !s.ok()) return s;
  std::vector<double> us;
  for (int i = 0; i < iters; ++i) {
    // Back to back, a rank that need not wait for the others (a broadcast's
    // root in MPI) times its own pace, not the call's latency.
    if (barrier_each && i > 0) {
      if (auto s = job.Barrier(); !s.ok()) return s;
    }
    const auto start = std::chrono::steady_clock::now();
    if (auto s = run(1); !s.ok()) return s;
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(us.begin(), us.end());
  const size_t p99 = static_cast<size_t>(std::ceil(0.99 * us.size())) - 1;
  for (auto [local, out] : {std::pair{us.front(), &r.lat_min_us}, {us[us.size() / 2], &r.lat_median_us},
                            {us[p99], &r.lat_p99_us}}) {
    absl::StatusOr<double> slowest = job.Max(local);
    if (!slowest.ok()) return slowest.status();
    *out = *slowest;
  }
  return absl::OkStatus();
}

// Times one placement of one row on one implementation.
absl::StatusOr<Result> Measure(const Flags& f, Job& job, Impl& impl, const Layout& l, bool in_place, Buffers& b) {
  const size_t elem = silk::DataTypeSize(f.type);
  const int n = job.size(), rank = job.rank();
  Call call{f.collective, b.send.data(), b.recv.data(), in_place, l.count, f.type, f.redop, f.root};
  if (in_place) {
    call.input = b.in_place.data() + l.in_place_send * elem;
    call.output = b.in_place.data() + impl.InPlaceOutput(l, f.collective) * elem;
  }
  // In place the input region is rewritten by every call: refill it before the check.
  auto fill = [&] { FillInput(f, n, rank, l, const_cast<void*>(call.input)); };
  fill();
  auto run = [&](int times) -> absl::Status {
    for (int i = 0; i < times; ++i) {
      if (auto s = impl.Start(call); !s.ok()) return s;
    }
    return impl.Finish();
  };
  int iters = f.iters;
  if (f.min_seconds == 0) {
    if (auto s = run(f.warmup); !s.ok()) return s;
  } else {
    // The warm-up calls run one by one and the quickest (the first pays for
    // set-up) sizes the timed run.
    double quickest_warm = 0;
    for (int i = 0; i < f.warmup; ++i) {
      const auto warm_start = std::chrono::steady_clock::now();
      if (auto s = run(1); !s.ok()) return s;
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - warm_start).count();
      quickest_warm = i == 0 ? took : std::min(quickest_warm, took);
    }
    // Every rank must make the same number of calls: size them from the slowest rank.
    auto slowest_warm = job.Max(quickest_warm);
    if (!slowest_warm.ok()) return slowest_warm.status();
    if (*slowest_warm > 0) {
      iters = static_cast<int>(std::clamp(std::ceil(f.min_seconds / *slowest_warm), static_cast<double>(f.iters), 1000.0));
    }
  }
  if (auto s = job.Barrier(); !s.ok()) return s;
  const int64_t wan_before = CrossRegionBytesSent(job.comm());
  const auto start = std::chrono::steady_clock::now();
  if (auto s = run(iters); !s.ok()) return s;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
  const int64_t wan_sent = CrossRegionBytesSent(job.comm()) - wan_before;
  auto slowest = job.Max(seconds);
  if (!slowest.ok()) return slowest.status();

  Result r;
  r.iters = iters;
  const size_t bytes = std::max(l.send, l.recv) * elem;
  r.time_us = *slowest * 1e6;
  r.algbw = *slowest > 0 ? bytes / 1e9 / *slowest : 0;
  r.busbw = r.algbw * BusFactor(f.collective, n);
  if (dynamic_cast<const SilkImpl*>(&impl) != nullptr && job.comm() != nullptr && job.comm()->num_regions() > 1) {
    // Per direction: the bytes each region's ranks sent out, summed; report the larger.
    const auto& placements = job.comm()->placements();
    std::vector<std::string> regions;
    for (const auto& p : placements) {
      if (std::find(regions.begin(), regions.end(), p.region) == regions.end()) regions.push_back(p.region);
    }
    int64_t largest = 0;
    for (const std::string& region : regions) {
      auto total = job.Sum(placements[rank].region == region ? wan_sent : 0);
      if (!total.ok()) return total.status();
      largest = std::max(largest, *total);
    }
    r.wan_bytes = largest / iters;
  }
  if (f.collective == Collective::kAllreduce) r.bound_us = WanModelFor(f, job.comm()).BoundUs(bytes);
  if (f.latency == 2 || (f.latency == 1 && bytes <= kLatencyMaxBytes)) {
    if (auto s = MeasureLatency(job, iters, f.latency_barrier, run, r); !s.ok()) return s;
  }
  if (f.check) {
    fill();
    if (auto s = run(1); !s.ok()) return s;
    if (f.real_inputs()) return WithError(f, job, l, call.output, r);
    auto wrong = job.Sum(CountWrong(f, n, rank, l, call.output));
    if (!wrong.ok()) return wrong.status();
    r.wrong = *wrong;
  }
  return r;
}

}  // namespace

silk::Compression CompressionOf(const Impl& impl) {
  const auto* silk_impl = dynamic_cast<const SilkImpl*>(&impl);
  return silk_impl != nullptr ? silk_impl->compression() : silk::Compression::kNone;
}

int main(int argc, char** argv) {
  Flags flags;
  if (absl::Status s = ParseFlags(argc, argv, &flags); !s.ok()) {
    if (absl::IsCancelled(s)) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "allreduce_perf: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto started = Job::Start(flags);
  if (!started.ok()) {
    std::fprintf(stderr, "allreduce_perf: FAILED to start: %s\n", std::string(started.status().message()).c_str());
    return 1;
  }
  Job& job = **started;
  const int n = job.size(), rank = job.rank();
  if (Rooted(flags.collective) && (flags.root < 0 || flags.root >= n)) {
    job.Die(absl::InvalidArgumentError(absl::StrFormat("root %d is outside the world of %d ranks", flags.root, n)));
  }

  std::vector<std::unique_ptr<Impl>> impls;
  std::string notes;
  for (const std::string& name : flags.impls) {
    std::unique_ptr<Impl> impl;
    if (name == "silk") {
      // One Silk implementation per --wan-compression setting, side by side.
      for (size_t c = 0; c < flags.wan_compression.size(); ++c) {
        auto silk_impl =
            std::make_unique<SilkImpl>(job.comm(), flags.algorithm, flags.wan_compression[c], flags.within_region);
        silk_impl->set_blocking(flags.blocking);
        if (c + 1 < flags.wan_compression.size()) {
          impls.push_back(std::move(silk_impl));
        } else {
          impl = std::move(silk_impl);
        }
      }
    }
    if (name == "mpi") {
      if (!job.mpi()) {
        job.Die(absl::InvalidArgumentError("--impl mpi needs a launch by mpirun (this job used the environment)"));
      }
      impl = std::make_unique<MpiImpl>();
    }
    if (name == "gloo") {
#ifdef SILK_HAVE_GLOO
      auto gloo = std::make_unique<GlooImpl>();
      if (gloo->Unsupported(flags).empty()) {
        if (absl::Status s = gloo->Connect(job); !s.ok()) job.Die(s);
      }
      impl = std::move(gloo);
#else
      notes += "# gloo: this build has no Gloo (install libgloo-dev): its rows are skipped\n";
      continue;
#endif
    }
    if (std::string why = impl->Unsupported(flags); !why.empty()) {
      notes += absl::StrFormat("# %s: %s: its rows are skipped\n", name, why);
      continue;
    }
    impls.push_back(std::move(impl));
  }

  std::FILE* json = nullptr;
  if (!flags.json.empty() && rank == 0) {
    json = std::fopen(flags.json.c_str(), "w");
    if (json == nullptr) job.Die(absl::InvalidArgumentError("cannot write " + flags.json));
  }
  if (rank == 0) {
    PrintHeader(flags, job);
    std::printf("%s", notes.c_str());
  }

  const size_t elem = silk::DataTypeSize(flags.type);
  const Layout largest = LayoutFor(flags.collective, flags.max_bytes, elem, n, rank);
  const size_t largest_bytes = (std::max(largest.send, largest.recv) + 16) * elem;
  Buffers buffers{std::vector<char>(largest_bytes), std::vector<char>(largest_bytes), std::vector<char>(largest_bytes)};

  std::vector<double> busbw_sum(impls.size(), 0.0);
  int rows = 0;
  int64_t wrong_total = 0;
  for (size_t bytes = flags.min_bytes; bytes <= flags.max_bytes; bytes = bytes == 0 ? 1 : bytes * flags.step_factor) {
    const Layout layout = LayoutFor(flags.collective, bytes, elem, n, rank);
    const size_t row_bytes = std::max(layout.send, layout.recv) * elem;
    for (size_t k = 0; k < impls.size(); ++k) {
      std::vector<Result> results;
      for (bool in_place : {false, true}) {
        absl::StatusOr<Result> r = Measure(flags, job, *impls[k], layout, in_place, buffers);
        if (!r.ok()) job.Die(r.status());
        results.push_back(*r);
        busbw_sum[k] += r->busbw;
        wrong_total += std::max<int64_t>(r->wrong, 0);
        if (json)
          std::fprintf(json, "%s\n", JsonLine(flags, impls[k]->name(), row_bytes, layout, *r, in_place,
                                             CompressionOf(*impls[k])).c_str());
      }
      if (rank == 0) {
        std::printf("%s\n", Row(flags, row_bytes, layout, results.data(), impls[k]->name(), impls.size() > 1).c_str());
        std::fflush(stdout);
      }
    }
    ++rows;
    if (bytes == 0) break;
  }
  if (rank == 0) {
    std::printf("# Out of bounds values : %lld %s\n", static_cast<long long>(wrong_total),
                wrong_total == 0 ? "OK" : "FAILED");
    for (size_t k = 0; k < impls.size(); ++k) {
      std::printf("# Avg bus bandwidth    : %g%s\n", rows > 0 ? busbw_sum[k] / (2 * rows) : 0.0,
                  impls.size() > 1 ? absl::StrFormat(" (%s)", impls[k]->name()).c_str() : "");
    }
    std::printf("#\n");
  }
  if (json) std::fclose(json);
  return wrong_total == 0 ? 0 : 1;
}
