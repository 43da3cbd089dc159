// silk-wanem: the WAN emulator of the virtual cluster. It attaches to the TUN
// device of each region's gateway namespace and forwards packets between
// regions with the delay, jitter, loss, rate and queue of the spec's links.
//
//   silk-wanem --spec cluster/specs/xinjiang-chongqing.textproto
//              --control /run/silk-vcluster/wanem.sock [--netns-prefix silk-gw-] [--tun wan0] [--seed N]
//
// cluster/vcluster starts it; `vcluster link/cut/heal` talk to its control socket.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "runtime/core/cluster_spec.h"
#include "cluster/wanem/emulator.h"
#include "runtime/core/cpu_set.h"
#include "runtime/core/log.h"

namespace {

int Usage(const char* program) {
  std::fprintf(stderr,
               "usage: %s --spec SPEC.textproto [--control SOCKET] [--netns-prefix PREFIX] [--tun NAME]\n"
               "          [--seed N] [--max-delay-line-mb N] [--delivery-batch-us N] [--realtime] [--no-offload]\n"
               "          [--cpus LIST] [--verbose]\n",
               program);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using silk::cluster::wanem::EmulatorOptions;
  std::string spec_path;
  EmulatorOptions options;
  options.seed = static_cast<uint64_t>(getpid()) * 0x9e3779b97f4a7c15ULL ^ silk::cluster::wanem::MonotonicNowNs();
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--verbose") {
      silk::SetLogLevel(1);
      continue;
    }
    if (flag == "--realtime") {
      options.realtime = true;
      continue;
    }
    if (flag == "--no-offload") {
      options.offload = false;
      continue;
    }
    if (i + 1 >= argc) return Usage(argv[0]);
    std::string value = argv[++i];
    uint64_t number = 0;
    if (flag == "--spec") {
      spec_path = value;
    } else if (flag == "--control") {
      options.control_path = value;
    } else if (flag == "--netns-prefix") {
      options.netns_prefix = value;
    } else if (flag == "--tun") {
      options.tun_name = value;
    } else if (flag == "--seed" && absl::SimpleAtoi(value, &number)) {
      options.seed = number;
    } else if (flag == "--max-delay-line-mb" && absl::SimpleAtoi(value, &number) && number > 0) {
      options.max_delay_line_bytes = number << 20;
    } else if (flag == "--cpus") {
      // Where the emulator runs: on a machine that also computes, the WAN's
      // routers belong with the host's communication, not on compute's cores.
      auto cpus = silk::ParseCpuList(value);
      absl::Status pinned = cpus.ok() ? silk::PinThisThread(*cpus) : cpus.status();
      if (!pinned.ok()) {
        std::fprintf(stderr, "silk-wanem: --cpus: %s\n", std::string(pinned.message()).c_str());
        return 2;
      }
    } else if (flag == "--delivery-batch-us" && absl::SimpleAtoi(value, &number) && number <= 1'000'000) {
      options.delivery_batch_ns = static_cast<int64_t>(number) * 1000;
    } else {
      std::fprintf(stderr, "silk-wanem: bad flag or value: %s %s\n", flag.c_str(), value.c_str());
      return Usage(argv[0]);
    }
  }
  if (spec_path.empty()) return Usage(argv[0]);
  auto spec = silk::cluster::LoadSpec(spec_path);
  if (!spec.ok()) {
    std::fprintf(stderr, "silk-wanem: %s\n", std::string(spec.status().message()).c_str());
    return 1;
  }
  auto emulator = silk::cluster::wanem::Emulator::Create(*spec, options);
  if (!emulator.ok()) {
    std::fprintf(stderr, "%s\n", std::string(emulator.status().message()).c_str());
    return 1;
  }
  absl::Status run = (*emulator)->Run();
  if (!run.ok()) {
    std::fprintf(stderr, "%s\n", std::string(run.message()).c_str());
    return 1;
  }
  return 0;
}
