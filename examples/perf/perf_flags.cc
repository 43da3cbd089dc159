#include "examples/perf/perf_flags.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace silk_perf {

const char kUsage[] = R"(usage:
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
                                 compressed: none, bf16, int8, int4, topk, or a list (none,int8,int4)
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

namespace {

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

}  // namespace

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

const char* TypeName(DataType t) {
  for (const auto& nt : kTypes) {
    if (nt.type == t) return nt.name;
  }
  return "?";
}

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

}  // namespace silk_perf
