// allreduce_perf's command line: the usage text (what --help prints), the
// collectives and element types it names, nccl-tests' bus bandwidth factors,
// and Flags with its parser.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "collectives/collectives.h"

namespace silk_perf {

// The flags, as --help prints them.
extern const char kUsage[];

using silk::DataType;
using silk::ReduceOp;

enum class Collective { kAllreduce, kReduceScatter, kAllgather, kBroadcast, kReduce, kAlltoall, kBarrier };

const char* CollectiveName(Collective c);
bool Reduces(Collective c);
bool Rooted(Collective c);

// nccl-tests' bus bandwidth factors: what each rank's links carry relative to the buffer.
double BusFactor(Collective c, int n);

const char* TypeName(DataType t);

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
  int latency = 1;  // per-call latency distribution: 0 never, 1 rows up to 1 MiB (allreduce_perf.cc: kLatencyMaxBytes), 2 every row
  bool latency_barrier = true;  // -l's calls each start from a barrier (OSU's way), or run back to back
  // Real-valued inputs (with --wan-compression): the error is then measured.
  bool real_inputs() const {
    return wan_compression.size() > 1 || wan_compression[0] != silk::Compression::kNone;
  }
};

// A size with an optional K, M or G suffix (powers of 1024).
bool ParseSize(const std::string& text, size_t* out);
// Cancelled for -h/--help; InvalidArgument, with a message, for a bad flag.
absl::Status ParseFlags(int argc, char** argv, Flags* flags);

}  // namespace silk_perf
