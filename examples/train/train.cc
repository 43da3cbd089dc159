// silk-train: data-parallel training of an MLP on a synthetic classification
// task, across ranks launched by mpirun, with the gradient exchange done by
// Silk's training runtime (--policy sync|delayed|diloco) or by a plain blocking
// MPI_Allreduce after backward (--policy mpi, the baseline).
//
//   mpirun -np 8 silk-train --policy sync --steps 100 --json out.json --trace trace.json
//
// Rank 0 prints one line per step (loss, step time, share of the exchange hidden
// behind compute, bytes sent over the WAN) and a summary.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <cblas.h>
#include <mpi.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collectives/collectives.h"
#include "examples/train/batch_loader.h"
#include "examples/train/elastic_train.h"
#include "examples/train/flags.h"
#include "examples/train/blas_core.h"
#include "examples/train/mlp.h"
#include "runtime/communicator.h"
#include "runtime/core/cpu_set.h"
#include "training/gradient_sync.h"
#include "training/optimizer.h"
#include "training/thread_cpu.h"
#include "training/trace.h"

namespace {

using silk::examples::Flags;

int Fail(int rank, const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "silk-train rank %d: %s: %s\n", rank, what.c_str(), std::string(s.message()).c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

void NameOtherThreads(const char* name) {
  const std::string self = std::to_string(static_cast<long>(gettid()));
  for (const auto& t : silk::training::ReadThreadCpuTimes()) {
    if (std::to_string(t.tid) == self) continue;
    if (FILE* f = std::fopen(("/proc/self/task/" + std::to_string(t.tid) + "/comm").c_str(), "w")) {
      std::fputs(name, f);
      std::fclose(f);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  silk::examples::RestartWithBetterBlasCoreIfNeeded(argv);  // before MPI, before anything else
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  if (flags.elastic) return silk::examples::RunElasticTraining(flags);  // no MPI: it would end the job with a rank
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  // Name the threads so that the CPU report tells compute, MPI and Silk apart:
  // this one "compute", MPI's (started by MPI_Init) "mpi", Silk's are silk-*.
  pthread_setname_np(pthread_self(), "compute");
  NameOtherThreads("mpi");
  openblas_set_num_threads(1);  // one compute thread per rank; the exchange has its own threads

  auto created = silk::Communicator::CreateDefault();
  if (!created.ok()) return Fail(-1, "cannot join the job", created.status());
  std::unique_ptr<silk::Communicator> comm = std::move(*created);
  const int rank = comm->rank(), size = comm->size();
  // The communicator's threads are placed already (SILK_CPUS); the compute
  // thread, and the data loader it starts below, go to --compute-cpus.
  if (!flags.compute_cpus.empty()) {
    if (absl::Status s = silk::PinThisThread(flags.compute_cpus); !s.ok()) {
      return Fail(rank, "--compute-cpus", s);
    }
  }
  const bool use_mpi = flags.policy == "mpi";
  const bool talk = rank == 0 && !flags.quiet;
  const std::string blas_core = silk::examples::LoadedBlasCore();
  if (rank == 0) {
    if (std::string notice = silk::examples::BlasRestartNotice(); !notice.empty()) {
      std::fprintf(stderr, "silk-train: %s\n", notice.c_str());
    }
  }

  // Peers in other regions: their transport counters are the WAN bytes.
  std::vector<int> wan_peers;
  std::vector<std::string> regions;
  for (const auto& p : comm->placements()) {
    if (p.region != comm->region()) wan_peers.push_back(p.rank);
    if (std::find(regions.begin(), regions.end(), p.region) == regions.end()) regions.push_back(p.region);
  }
  auto wan_bytes = [&] {
    uint64_t total = 0;
    for (int p : wan_peers) total += comm->transport().counters(p).bytes_sent;
    return total;
  };

  std::vector<int> sizes = {flags.features};
  for (int l = 0; l < flags.layers; ++l) sizes.push_back(flags.hidden);
  sizes.push_back(flags.classes);
  silk::examples::Mlp model(sizes);
  silk::examples::SyntheticData data(flags.features, flags.classes, flags.seed, flags.noise);

  const absl::Time origin = absl::Now();
  std::unique_ptr<silk::training::TraceRecorder> trace;
  if (!flags.trace.empty() && rank == 0) trace = std::make_unique<silk::training::TraceRecorder>(rank, origin);

  silk::training::GradientSyncOptions options = silk::examples::SyncOptions(flags);
  options.trace = trace.get();
  const std::vector<size_t> counts = model.ParamCounts();
  auto made = silk::training::GradientSync::Create(*comm, counts, options);
  if (!made.ok()) return Fail(rank, "GradientSync", made.status());
  silk::training::GradientSync& sync = **made;
  std::vector<float*> params, grads;
  for (int i = 0; i < model.num_params(); ++i) {
    params.push_back(sync.param(i));
    grads.push_back(sync.grad(i));
  }
  model.Init(flags.InitSeed(), params);
  if (absl::Status s = sync.BroadcastParameters(); !s.ok()) return Fail(rank, "broadcast", s);
  silk::training::SgdMomentum optimiser(sync.params().size(), flags.lr, flags.momentum);

  const size_t total = sync.params().size();
  if (talk) {
    std::printf("silk-train: policy %s, %d ranks in %zu region(s), MLP", flags.policy.c_str(), size, regions.size());
    for (size_t i = 0; i < sizes.size(); ++i) std::printf("%s%d", i ? "-" : " ", sizes[i]);
    std::printf(", %zu parameters (%.2f MB of gradients), batch %d per rank (%d global), %zu bucket(s)",
                total, total * 4.0 / 1e6, flags.batch, flags.batch * size, sync.layout().buckets.size());
    if (flags.policy == "diloco") {
      std::printf(", H %d, pseudo-gradients %s (%.2f bits each)", flags.H, flags.compression.c_str(),
                  silk::training::BlockQuantizer(options.diloco_compression).BitsPerValue());
    }
    if (options.wan_compression != silk::Compression::kNone) {
      std::printf(", WAN hop %s with error feedback", flags.wan_compression.c_str());
    }
    std::printf("\n");
    std::fflush(stdout);
  }

  silk::examples::BatchLoader loader(data, rank, size, flags.batch, flags.steps);
  struct StepRecord {
    double t_s, loss, step_s, hidden;
    uint64_t wan;
  };
  std::vector<StepRecord> records;
  uint64_t wan_before = wan_bytes();
  // The steps after warm-up are the ones the summary counts.
  const int warm = std::min(2, flags.steps - 1);
  // CPU time of this rank's training threads (the compute thread and its data
  // loader): summed over ranks, a step's compute in core-ms.
  auto compute_cpu_s = [] {
    double s = 0;
    for (const auto& t : silk::training::ReadThreadCpuTimes()) {
      if (t.name == "compute" || t.name == "data") s += t.user_s + t.system_s;
    }
    return s;
  };
  // The CPU figures cover the same wall-clock span on every rank: from a
  // barrier before the first counted step to one after the last (ranks under
  // delayed or diloco may run a step apart).
  silk::training::MachineCpu machine_at_warm;
  double compute_at_warm = 0;
  absl::Time counted_start;
  for (int step = 0; step < flags.steps; ++step) {
    if (step == warm) {
      MPI_Barrier(MPI_COMM_WORLD);
      counted_start = absl::Now();
      machine_at_warm = silk::training::ReadMachineCpu();
      compute_at_warm = compute_cpu_s();
    }
    const absl::Time t0 = absl::Now();
    absl::StatusOr<const silk::examples::Batch*> batch = loader.Next(absl::Seconds(60));
    if (!batch.ok()) return Fail(rank, "BatchLoader", batch.status());
    const float* x = (*batch)->x.data();
    const int* labels = (*batch)->labels.data();
    const float loss = model.Forward(params, x, labels, flags.batch);
    const absl::Time t1 = absl::Now();
    absl::Status ready_status;
    model.Backward(params, grads, x, labels, flags.batch, [&](int i) {
      if (!use_mpi) ready_status.Update(sync.MarkReady(i));
    });
    if (!ready_status.ok()) return Fail(rank, "MarkReady", ready_status);
    const absl::Time t2 = absl::Now();
    // The optimiser steps each bucket's range as soon as its gradients are
    // final, while the later buckets are still being exchanged.
    auto step_range = [&](size_t offset, size_t count) {
      const absl::Time start = absl::Now();
      optimiser.Step(sync.params().subspan(offset, count), sync.grads().subspan(offset, count), offset);
      if (trace) trace->Span("compute", "optimiser", start, absl::Now());
    };
    double hidden = 0;
    if (use_mpi) {
      MPI_Allreduce(MPI_IN_PLACE, sync.grads().data(), static_cast<int>(total), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      const float inv = 1.0f / size;
      for (float& g : sync.grads()) g *= inv;
      if (trace) trace->Span("exchange", "MPI_Allreduce", t2, absl::Now());
      step_range(0, total);
    } else if (absl::Status s = sync.Finish(step_range); !s.ok()) {
      return Fail(rank, "Finish", s);
    }
    const absl::Time t3 = absl::Now();
    if (!use_mpi) {
      if (absl::Status s = sync.EndStep(); !s.ok()) return Fail(rank, "EndStep", s);
      hidden = sync.last_step().hidden_fraction();
    }
    const absl::Time t4 = absl::Now();
    if (trace) {
      trace->Span("compute", "forward", t0, t1);
      trace->Span("compute", "backward", t1, t2);
      if (t4 - t3 > absl::Microseconds(20)) trace->Span("compute", "end of step (diloco fragments)", t3, t4);
    }
    const uint64_t wan_now = wan_bytes();
    StepRecord r{absl::ToDoubleSeconds(t4 - origin), loss, absl::ToDoubleSeconds(t4 - t0), hidden, wan_now - wan_before};
    wan_before = wan_now;
    records.push_back(r);
    if (talk) {
      if (use_mpi) {
        std::printf("step %4d  loss %.4f  time %7.1f ms  hidden   0%%  wan (MPI's, not counted)\n", step, loss,
                    r.step_s * 1e3);
      } else {
        std::printf("step %4d  loss %.4f  time %7.1f ms  hidden %3.0f%%  wan (rank 0) %7.3f MB\n", step, loss, r.step_s * 1e3,
                    hidden * 100, r.wan / 1e6);
      }
      std::fflush(stdout);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double counted_wall_s = absl::ToDoubleSeconds(absl::Now() - counted_start);
  const silk::training::MachineCpu machine_at_end = silk::training::ReadMachineCpu();
  const double compute_s = compute_cpu_s() - compute_at_warm;
  double compute_all_s = 0;
  MPI_Reduce(&compute_s, &compute_all_s, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  if (!use_mpi) {
    if (absl::Status s = sync.Drain(); !s.ok()) return Fail(rank, "Drain", s);
  }
  // Each rank counted what it sent to other regions; rank 0 reports the sum over ranks
  // (the per-step lines above showed rank 0's own share only).
  std::vector<uint64_t> wan_local(records.size() + 1), wan_all(records.size() + 1, 0);
  for (size_t i = 0; i < records.size(); ++i) wan_local[i] = records[i].wan;
  wan_local.back() = wan_bytes() - wan_before;  // what Drain sent
  MPI_Reduce(wan_local.data(), wan_all.data(), static_cast<int>(wan_local.size()), MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    for (size_t i = 0; i < records.size(); ++i) records[i].wan = wan_all[i];
  }
  // The loss on the global batch at every step (the mean of the ranks' losses),
  // and its mean over the last steps: a final loss without one batch's noise.
  std::vector<double> losses(records.size()), global_losses(records.size(), 0.0);
  for (size_t i = 0; i < records.size(); ++i) losses[i] = records[i].loss;
  MPI_Reduce(losses.data(), global_losses.data(), static_cast<int>(losses.size()), MPI_DOUBLE, MPI_SUM, 0,
             MPI_COMM_WORLD);
  for (double& l : global_losses) l /= size;
  const size_t last = std::min<size_t>(10, global_losses.size());
  double final_loss = 0;
  for (size_t i = global_losses.size() - last; i < global_losses.size(); ++i) final_loss += global_losses[i] / last;
  const double train_end_s = absl::ToDoubleSeconds(absl::Now() - origin);

  // Held-out evaluation (samples no rank trained on), on this rank's parameters.
  const int eval_n = 1024;
  std::vector<float> ex(size_t(eval_n) * flags.features);
  std::vector<int> el(eval_n);
  for (int j = 0; j < eval_n; ++j) el[j] = data.Sample((uint64_t(1) << 40) + j, ex.data() + size_t(j) * flags.features);
  const float eval_loss = model.Forward(params, ex.data(), el.data(), eval_n);
  const double eval_acc = model.Accuracy(el.data(), eval_n);
  const bool finite = std::isfinite(eval_loss);

  // Summary over the steps after warm-up.
  double step_sum = 0, hidden_sum = 0;
  uint64_t wan_sum = 0;
  for (int s = warm; s < flags.steps; ++s) {
    step_sum += records[s].step_s;
    hidden_sum += records[s].hidden;
    wan_sum += records[s].wan;
  }
  const int counted = flags.steps - warm;
  // The whole machine's cores over those steps (every rank's and the network's work, on a shared machine).
  const double machine_busy_ms = (machine_at_end.busy_s - machine_at_warm.busy_s) * 1e3 / counted;
  const double machine_idle_ms = (machine_at_end.idle_s - machine_at_warm.idle_s) * 1e3 / counted;
  const double machine_steal_ms = (machine_at_end.steal_s - machine_at_warm.steal_s) * 1e3 / counted;
  const double wall_ms = counted_wall_s * 1e3 / counted;  // the span the CPU figures cover, per step
  const double compute_ms = compute_all_s * 1e3 / counted;
  const double step_mean = step_sum / counted;
  const double wan_per_step = use_mpi ? -1.0 : double(wan_sum + wan_all.back()) / counted;
  const auto threads = silk::training::ReadThreadCpuTimes();
  const auto cpu = silk::training::SummarizeThreadCpu(threads);
  const std::string compute_thread_cpus = silk::training::ThreadsCpus(threads, "compute");
  const std::string silk_thread_cpus = silk::training::ThreadsCpus(threads, "silk-*");
  std::map<std::string, double> by_name;
  for (const auto& t : threads) by_name[t.name] += t.user_s + t.system_s;

  if (talk) {
    std::printf("summary: policy %s, %d ranks, %d steps: mean step %.1f ms, exchange hidden %.0f%%, ", flags.policy.c_str(),
                size, flags.steps, step_mean * 1e3, use_mpi ? 0.0 : hidden_sum / counted * 100);
    if (use_mpi) {
      std::printf("WAN bytes n/a (MPI)");
    } else {
      std::printf("WAN %.2f MB/step (all ranks)", wan_per_step / 1e6);
    }
    std::printf(", final loss %.4f (global batch, last %zu steps), held-out loss %.4f, accuracy %.1f%%, wall %.1f s, "
                "OpenBLAS %s kernels\n", final_loss, last, eval_loss, eval_acc * 100, train_end_s, blas_core.c_str());
    std::printf("machine CPU per step (%.1f ms of wall time): busy %.0f, idle %.0f, stolen by the hypervisor %.0f "
                "core-ms; the ranks' compute and data threads %.0f core-ms\n", wall_ms, machine_busy_ms, machine_idle_ms,
                machine_steal_ms, compute_ms);
    std::printf("thread CPU (rank 0): silk-* threads %.2f s, other threads (compute) %.2f s:", cpu.silk_s, cpu.other_s);
    for (const auto& [name, s] : by_name) std::printf(" %s=%.2fs", name.c_str(), s);
    std::printf("\nthreads' CPUs (rank 0): compute %s, silk-* %s\n", compute_thread_cpus.c_str(),
                silk_thread_cpus.c_str());
    std::fflush(stdout);
  }
  if (rank == 0 && !flags.json.empty()) {
    FILE* f = std::fopen(flags.json.c_str(), "w");
    if (f == nullptr) return Fail(rank, "json", absl::UnavailableError("cannot write " + flags.json));
    std::fprintf(f, "{\"policy\":\"%s\",\"ranks\":%d,\"regions\":%zu,\"steps\":%d,\"parameters\":%zu,\"blas_core\":\"%s\",",
                 flags.policy.c_str(), size, regions.size(), flags.steps, total, blas_core.c_str());
    std::fprintf(f, "\"wan_compression\":\"%s\",", flags.wan_compression.c_str());
    std::fprintf(f, "\"step_time_s\":%.6f,\"hidden\":%.4f,\"wan_bytes_per_step\":%s,", step_mean,
                 use_mpi ? 0.0 : hidden_sum / counted, use_mpi ? "null" : absl::StrFormat("%.0f", wan_per_step).c_str());
    std::fprintf(f, "\"final_train_loss\":%.6f,\"final_loss\":%.6f,\"eval_loss\":%s,\"eval_accuracy\":%.4f,\"wall_s\":%.3f,",
                 records.back().loss, final_loss, finite ? absl::StrFormat("%.6f", eval_loss).c_str() : "null", eval_acc,
                 train_end_s);
    std::fprintf(f, "\"global_losses\":[");
    for (size_t i = 0; i < global_losses.size(); ++i) std::fprintf(f, "%s%.6f", i ? "," : "", global_losses[i]);
    std::fprintf(f, "],");
    std::fprintf(f, "\"machine_busy_ms_per_step\":%.1f,\"machine_idle_ms_per_step\":%.1f,\"machine_steal_ms_per_step\":%.1f,",
                 machine_busy_ms, machine_idle_ms, machine_steal_ms);
    std::fprintf(f, "\"compute_ms_per_step\":%.1f,\"wall_ms_per_step\":%.1f,\"compute_thread_cpus\":\"%s\",\"silk_thread_cpus\":\"%s\",",
                 compute_ms, wall_ms, compute_thread_cpus.c_str(), silk_thread_cpus.c_str());
    std::fprintf(f, "\"cpu_silk_threads_s\":%.3f,\"cpu_other_threads_s\":%.3f,\"losses\":[", cpu.silk_s, cpu.other_s);
    for (size_t i = 0; i < records.size(); ++i) {
      std::fprintf(f, "%s[%.4f,%.6f,%.6f,%llu]", i ? "," : "", records[i].t_s, records[i].loss, records[i].step_s,
                   static_cast<unsigned long long>(records[i].wan));
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  if (trace) {
    if (absl::Status s = trace->Write(flags.trace); !s.ok()) return Fail(rank, "trace", s);
  }
  made->reset();
  comm.reset();
  MPI_Finalize();
  return finite ? 0 : 3;
}
