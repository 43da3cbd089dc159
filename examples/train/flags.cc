#include "examples/train/flags.h"

#include <cstdio>
#include <cstdlib>

#include "collectives/compression/quantizer.h"
#include "runtime/core/cpu_set.h"
#include "training/compression.h"
#include "training/gradient_sync.h"

namespace silk::examples {

const char kTrainUsage[] = R"(usage: mpirun -np N silk-train [flags]

Trains an MLP on a synthetic classification task, data-parallel across the
ranks; rank 0 prints one line per step and a summary.

  --policy P             gradient exchange (training/gradient_sync.h):   [sync]
                         sync     all-reduce per bucket, overlapped with backward
                         delayed  step t's exchange overlaps step t+1
                         diloco   H local steps per region, then the regions'
                                  pseudo-gradients cross the WAN, compressed
                         mpi      a blocking MPI_Allreduce after backward
  --steps N              training steps                                  [60]
  --hidden N, --layers N width and number of hidden layers               [1024, 2]
  --features N           input features of the synthetic task            [256]
  --classes N            classes of the synthetic task                   [16]
  --batch N              examples per rank and step                      [64]
  --noise X              label noise of the synthetic task               [2.5]
  --bucket-mb MB         gradient bucket size                            [25]
  --first-bucket-mb MB   size of the first bucket (starts the exchange early) [1]
  --H N                  diloco: local steps between outer steps         [8]
  --fragments N          diloco: exchange the model in N fragments, staggered
                         across steps (0: all at once)                   [0]
  --lr X, --momentum X   inner optimizer (SGD with momentum)             [0.05, 0.9]
  --outer-lr X           diloco: outer learning rate                     [0.7]
  --outer-momentum X     diloco: outer Nesterov momentum                 [0.5]
  --compression C        diloco: pseudo-gradients as none, int8, int4 or
                         topk                                            [int4]
  --wan-compression C    sync, delayed: each bucket's all-reduce sends its WAN
                         hop as none, bf16, int8, int4 or topk, with error
                         feedback per bucket                             [none]
  --seed N               model and data seed                             [1]
  --init-seed N          the model's initialisation alone, on the same task
                         and batches (run-to-run spread of a setting)    [--seed]
  --compute-cpus LIST    pin the training thread and its loader (e.g. 0-3,8)
  --json FILE            rank 0 writes the per-step figures and summary as JSON
  --trace FILE           rank 0 writes a Chrome/Perfetto trace (chrome://tracing)
  --quiet                no per-step lines
  --elastic              ride out lost ranks and admit restarted ones (needs an
                         elastic launch: `cluster/vcluster run --elastic`, or
                         SILK_ELASTIC=1 with a silk-coordinator; no MPI then;
                         not with --policy mpi); docs/reliability.md
  --events FILE          --elastic: each member appends JSON lines (step,
                         failure, reconfigured, state, final) to FILE ("%r"
                         becomes the member id)
  --admit-every N        --elastic: steps between agreements on whether
                         restarted members wait to be admitted      [5]
  -h, --help             this text

Silk itself reads SILK_* environment variables (README.md, Configuration).
)";

bool ParseFlags(int argc, char** argv, Flags* f) {
  std::string compute_cpus;  // the --compute-cpus text, parsed below
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "silk-train: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
#define SILK_FLAG(name, expr)     \
  if (a == name) {                \
    if (!(v = next(name))) return false; \
    expr;                         \
    continue;                     \
  }
    SILK_FLAG("--policy", f->policy = v);
    SILK_FLAG("--steps", f->steps = std::atoi(v));
    SILK_FLAG("--hidden", f->hidden = std::atoi(v));
    SILK_FLAG("--layers", f->layers = std::atoi(v));
    SILK_FLAG("--features", f->features = std::atoi(v));
    SILK_FLAG("--classes", f->classes = std::atoi(v));
    SILK_FLAG("--batch", f->batch = std::atoi(v));
    SILK_FLAG("--bucket-mb", f->bucket_mb = std::atof(v));
    SILK_FLAG("--first-bucket-mb", f->first_bucket_mb = std::atof(v));
    SILK_FLAG("--H", f->H = std::atoi(v));
    SILK_FLAG("--fragments", f->fragments = std::atoi(v));
    SILK_FLAG("--noise", f->noise = static_cast<float>(std::atof(v)));
    SILK_FLAG("--lr", f->lr = static_cast<float>(std::atof(v)));
    SILK_FLAG("--momentum", f->momentum = static_cast<float>(std::atof(v)));
    SILK_FLAG("--outer-lr", f->outer_lr = static_cast<float>(std::atof(v)));
    SILK_FLAG("--outer-momentum", f->outer_momentum = static_cast<float>(std::atof(v)));
    SILK_FLAG("--compression", f->compression = v);
    SILK_FLAG("--wan-compression", f->wan_compression = v);
    SILK_FLAG("--seed", f->seed = std::strtoull(v, nullptr, 10));
    SILK_FLAG("--init-seed", f->init_seed = std::strtoll(v, nullptr, 10));
    SILK_FLAG("--json", f->json = v);
    SILK_FLAG("--trace", f->trace = v);
    SILK_FLAG("--compute-cpus", compute_cpus = v);
    SILK_FLAG("--events", f->events = v);
    SILK_FLAG("--admit-every", f->admit_every = std::atoi(v));
#undef SILK_FLAG
    if (a == "--quiet") {
      f->quiet = true;
      continue;
    }
    if (a == "--elastic") {
      f->elastic = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      std::fputs(kTrainUsage, stdout);
      std::exit(0);
    }
    std::fprintf(stderr, "silk-train: unknown flag %s (see --help)\n", a.c_str());
    return false;
  }
  if (f->steps < 1 || f->hidden < 1 || f->layers < 0 || f->batch < 1 || f->features < 1 || f->classes < 2 || f->H < 1) {
    std::fprintf(stderr, "silk-train: --steps, --hidden, --batch, --features, --H must be positive, --classes >= 2\n");
    return false;
  }
  if (f->policy != "sync" && f->policy != "delayed" && f->policy != "diloco" && f->policy != "mpi") {
    std::fprintf(stderr, "silk-train: unknown --policy %s (sync, delayed, diloco, mpi)\n", f->policy.c_str());
    return false;
  }
  if (f->elastic && (f->policy == "mpi" || f->admit_every < 1)) {
    std::fprintf(stderr, "silk-train: --elastic needs --policy sync, delayed or diloco, and --admit-every >= 1\n");
    return false;
  }
  if (!compute_cpus.empty()) {
    absl::StatusOr<std::vector<int>> cpus = silk::ParseCpuList(compute_cpus);
    if (!cpus.ok()) {
      std::fprintf(stderr, "silk-train: --compute-cpus: %s\n", std::string(cpus.status().message()).c_str());
      return false;
    }
    f->compute_cpus = *std::move(cpus);
  }
  if (!silk::training::ParseCompression(f->compression).ok()) {
    std::fprintf(stderr, "silk-train: unknown --compression %s (none, int8, int4, topk)\n", f->compression.c_str());
    return false;
  }
  if (!silk::ParseCompression(f->wan_compression).ok()) {
    std::fprintf(stderr, "silk-train: unknown --wan-compression %s (none, bf16, int8, int4, topk)\n",
                 f->wan_compression.c_str());
    return false;
  }
  return true;
}


training::GradientSyncOptions SyncOptions(const Flags& f) {
  training::GradientSyncOptions o;
  o.policy = f.policy == "mpi" ? training::SyncPolicy::kSync : *training::ParseSyncPolicy(f.policy);
  o.bucket_bytes = static_cast<size_t>(f.bucket_mb * (1 << 20));
  o.first_bucket_bytes = static_cast<size_t>(f.first_bucket_mb * (1 << 20));
  o.inner_steps = f.H;
  o.fragments = f.fragments;
  o.outer_lr = f.outer_lr;
  o.outer_momentum = f.outer_momentum;
  o.diloco_compression = *training::ParseCompression(f.compression);  // checked with the flags
  o.wan_compression = *ParseCompression(f.wan_compression);
  return o;
}

}  // namespace silk::examples
