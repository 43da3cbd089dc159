// silk-train's flags, shared by its MPI loop (train.cc) and its elastic one (elastic_train.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "training/gradient_sync.h"

namespace silk::examples {

struct Flags {
  std::string policy = "sync";
  int steps = 60;
  int hidden = 1024;
  int layers = 2;  // hidden layers
  int features = 256;
  int classes = 16;
  int batch = 64;  // per rank
  double bucket_mb = 25.0;
  double first_bucket_mb = 1.0;
  int H = 8;
  int fragments = 0;
  float noise = 2.5f;
  float lr = 0.05f;
  float momentum = 0.9f;
  float outer_lr = 0.7f;
  float outer_momentum = 0.5f;  // with only steps/H outer steps in a short run, 0.9 overshoots
  std::string compression = "int4";  // diloco's pseudo-gradients over the WAN
  std::string wan_compression = "none";  // sync and delayed: each bucket's WAN hop
  uint64_t seed = 1;
  int64_t init_seed = -1;  // the model's initialisation alone (-1: seed)
  uint64_t InitSeed() const { return init_seed >= 0 ? static_cast<uint64_t>(init_seed) : seed; }
  std::string json, trace;
  std::vector<int> compute_cpus;  // where the training thread and its data loader run (empty: anywhere)
  bool quiet = false;
  // Elastic training (examples/train/elastic_train.cc): survive lost ranks.
  bool elastic = false;
  std::string events;  // JSON lines per member ("%r": the member id)
  int admit_every = 5;  // steps between agreements on join requests
};

extern const char kTrainUsage[];

// The training runtime's options the flags ask for (--policy mpi: sync's
// buckets, which the MPI loop uses for its arena only).
training::GradientSyncOptions SyncOptions(const Flags& f);

// Parses argv; prints what is wrong and returns false on a bad flag; --help prints and exits.
bool ParseFlags(int argc, char** argv, Flags* f);

}  // namespace silk::examples
