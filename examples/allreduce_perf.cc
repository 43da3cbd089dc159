// allreduce_perf: Silk's counterpart of nccl-tests. Same flags, same table,
// same bandwidth formulas, so its numbers read like NCCL's. The flags are
// kUsage in examples/perf/perf_flags.cc (what --help prints); the
// implementations timed are in perf_impls.h, the inputs and their check in
// perf_data.h. This file measures a row and prints the table.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "collectives/collectives.h"
#include "examples/perf/perf_data.h"
#include "examples/perf/perf_flags.h"
#include "examples/perf/perf_impls.h"
#include "runtime/communicator.h"
#include "runtime/core/cluster_spec.h"

namespace silk_perf {
namespace {

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
}  // namespace silk_perf

using namespace silk_perf;  // main and CompressionOf: this tool's code outside silk_perf

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
