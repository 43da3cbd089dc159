#include "runtime/core/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "runtime/core/cpu_set.h"
#include "runtime/core/status_macros.h"

namespace silk {
namespace {

const char* Env(const char* name) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? value : nullptr;
}

absl::Status Invalid(const char* name, const char* value, const char* expected) {
  return absl::InvalidArgumentError(
      absl::StrFormat("environment variable %s=\"%s\" is invalid: expected %s", name, value, expected));
}

template <typename Int>
absl::Status ReadInt(const char* name, Int* out, long long min, long long max) {
  const char* value = Env(name);
  if (value == nullptr) return absl::OkStatus();
  long long parsed;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < min || parsed > max) {
    return Invalid(name, value, absl::StrFormat("an integer in [%d, %d]", min, max).c_str());
  }
  *out = static_cast<Int>(parsed);
  return absl::OkStatus();
}

absl::Status ReadPositiveDuration(const char* name, absl::Duration* out) {
  const char* value = Env(name);
  if (value == nullptr) return absl::OkStatus();
  auto d = ParseDuration(value);
  if (!d.ok() || *d <= absl::ZeroDuration()) return Invalid(name, value, "a duration such as 300s or 5m");
  *out = *d;
  return absl::OkStatus();
}

absl::Status ReadLaunch(Config* config) {
  SILK_RETURN_IF_ERROR(ReadInt("MASTER_PORT", &config->master_port, 1, 65535));
  SILK_RETURN_IF_ERROR(ReadInt("RANK", &config->env_rank, 0, 1 << 24));
  SILK_RETURN_IF_ERROR(ReadInt("WORLD_SIZE", &config->env_world_size, 1, 1 << 24));
  SILK_RETURN_IF_ERROR(ReadInt("LOCAL_RANK", &config->env_local_rank, 0, 1 << 24));
  if (const char* v = Env("MASTER_ADDR")) config->master_addr = v;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_STORE_PORT", &config->store_port, 1, 65535));
  int elastic = config->elastic ? 1 : 0;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_ELASTIC", &elastic, 0, 1));
  config->elastic = elastic != 0;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_ELASTIC_INCARNATION", &config->elastic_incarnation, 0, 1 << 30));
  if (config->store_port < 0 && config->master_port > 0) {
    config->store_port = Env("TORCHELASTIC_RUN_ID") != nullptr ? config->master_port + 1 : config->master_port;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(const std::string& text) {
  std::string s = absl::AsciiStrToLower(text);
  size_t split = 0;
  while (split < s.size() && (std::isdigit(static_cast<unsigned char>(s[split])) || s[split] == '.')) ++split;
  double number;
  if (split == 0 || !absl::SimpleAtod(s.substr(0, split), &number) || number < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("cannot parse duration \"%s\"", text));
  }
  std::string unit = s.substr(split);
  if (unit.empty() || unit == "s") return absl::Seconds(number);
  if (unit == "ms") return absl::Milliseconds(number);
  if (unit == "us") return absl::Microseconds(number);
  if (unit == "m" || unit == "min") return absl::Minutes(number);
  if (unit == "h") return absl::Hours(number);
  return absl::InvalidArgumentError(absl::StrFormat("unknown unit in duration \"%s\"", text));
}

absl::StatusOr<double> ParseRate(const std::string& text) {
  std::string s = absl::AsciiStrToLower(text);
  double scale = 1;
  for (auto [suffix, factor] : {std::pair<const char*, double>{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}) {
    std::string suf = suffix;
    if (s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0) {
      s.resize(s.size() - suf.size());
      scale = factor;
      break;
    }
  }
  double number;
  if (!absl::SimpleAtod(s, &number) || number <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat("cannot parse rate \"%s\"", text));
  }
  return number * scale;
}

absl::StatusOr<Config> Config::FromEnvironment() {
  Config config;
  SILK_RETURN_IF_ERROR(ReadPositiveDuration("SILK_TIMEOUT", &config.timeout));
  SILK_RETURN_IF_ERROR(ReadPositiveDuration("SILK_STARTUP_TIMEOUT", &config.startup_timeout));
  SILK_RETURN_IF_ERROR(ReadPositiveDuration("SILK_WAN_OUTAGE_TOLERANCE", &config.wan_outage_tolerance));
  SILK_RETURN_IF_ERROR(ReadPositiveDuration("SILK_ELASTIC_DEAD_AFTER", &config.elastic_dead_after));
  SILK_RETURN_IF_ERROR(ReadPositiveDuration("SILK_ELASTIC_REJOIN_TIMEOUT", &config.elastic_rejoin_timeout));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_LANES", &config.lanes, 1, 64));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_WAN_LANES", &config.wan_lanes, 0, 64));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_PROGRESS_THREADS", &config.progress_threads, 1, 64));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_ENGINE_STREAMS", &config.engine_streams, 1, 64));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_SOCKET_BUFFER", &config.socket_buffer_bytes, 0, 1ll << 31));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_WAN_NOTSENT_LOWAT", &config.wan_notsent_lowat_bytes, 0, 1ll << 30));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_STRIPE_BYTES", &config.stripe_bytes, 4096, 1ll << 30));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_CHUNK_BYTES", &config.chunk_bytes, 4096, 1ll << 30));
  size_t scratch_mb = config.scratch_pool_bytes >> 20;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_SCRATCH_POOL_MB", &scratch_mb, 0, 1ll << 30));
  config.scratch_pool_bytes = scratch_mb << 20;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_PORT", &config.port, 0, 65535));
  SILK_RETURN_IF_ERROR(ReadInt("SILK_LOG", &config.log_level, 0, 3));
  int shm = config.shm ? 1 : 0;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_SHM", &shm, 0, 1));
  config.shm = shm != 0;
  int fast_path = config.fast_path ? 1 : 0;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_FAST_PATH", &fast_path, 0, 1));
  config.fast_path = fast_path != 0;
  int node_slots = config.node_slots ? 1 : 0;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_NODE_SLOTS", &node_slots, 0, 1));
  config.node_slots = node_slots != 0;
  int deadlock_checks = config.mutex_deadlock_checks ? 1 : 0;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_MUTEX_DEADLOCK_CHECKS", &deadlock_checks, 0, 1));
  config.mutex_deadlock_checks = deadlock_checks != 0;
  int pacing = !config.wan_pacing ? 0 : config.wan_pacing_measured ? 1 : 2;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_WAN_PACING", &pacing, 0, 2));
  config.wan_pacing = pacing != 0;
  config.wan_pacing_measured = pacing == 1;
  int probe = config.probe_tiers ? 1 : 0;
  SILK_RETURN_IF_ERROR(ReadInt("SILK_PROBE_TIERS", &probe, 0, 1));
  config.probe_tiers = probe != 0;
  if (const char* v = Env("SILK_CONGESTION")) {
    std::string cc = v;
    if (cc != "bbr" && cc != "cubic" && cc != "reno") return Invalid("SILK_CONGESTION", v, "bbr, cubic or reno");
    config.congestion = cc;
  }
  if (const char* v = Env("SILK_WAN_CONGESTION")) {
    std::string cc = v;
    if (cc != "bbr" && cc != "cubic" && cc != "reno") return Invalid("SILK_WAN_CONGESTION", v, "bbr, cubic or reno");
    config.wan_congestion = cc;
  }
  if (const char* v = Env("SILK_CLUSTER_SPEC")) config.cluster_spec = v;
  if (const char* v = Env("SILK_TRACE")) config.trace_path = v;
  if (const char* v = Env("SILK_LINK_RATE")) {
    auto r = ParseRate(v);
    if (!r.ok()) return Invalid("SILK_LINK_RATE", v, "a rate such as 1gbit");
    config.link_rate_bps = *r;
  }
  if (const char* v = Env("SILK_LINK_RTT")) {
    auto d = ParseDuration(v);
    if (!d.ok()) return Invalid("SILK_LINK_RTT", v, "a duration such as 40ms");
    config.link_rtt = *d;
  }
  SILK_RETURN_IF_ERROR(ReadLaunch(&config));
  if (const char* v = Env("SILK_CPUS")) {
    auto cpus = ParseCpuList(v);
    if (!cpus.ok()) return Invalid("SILK_CPUS", v, "a CPU list such as 0 or 0-3,8");
    // Checked against the machine, not this thread: the thread may already
    // be pinned to the cores that compute, elsewhere.
    const std::vector<int> online = OnlineCpus();
    for (int cpu : *cpus) {
      if (!std::binary_search(online.begin(), online.end(), cpu)) {
        return Invalid("SILK_CPUS", v, absl::StrFormat("online CPUs (%s)", FormatCpuList(online)).c_str());
      }
    }
    config.cpus = *cpus;
  }
  if (const char* v = Env("SILK_ALGO")) config.algorithm = v;
  if (const char* v = Env("SILK_JOB_TOKEN")) config.job_token = v;
  if (const char* v = Env("SILK_REGION")) config.region = v;
  if (const char* v = Env("SILK_SOCKET_IFNAME")) config.socket_ifname = v;
  if (const char* v = Env("SILK_NODE")) {
    config.node = v;
  } else {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    config.node = host;
  }
  return config;
}

absl::StatusOr<Config> Config::LaunchFromEnvironment() {
  Config config;
  SILK_RETURN_IF_ERROR(ReadLaunch(&config));
  return config;
}

size_t Config::EffectiveSocketBuffer() const {
  if (socket_buffer_bytes > 0) return socket_buffer_bytes;
  double bdp_bytes = link_rate_bps / 8.0 * absl::ToDoubleSeconds(link_rtt);
  double per_lane = 2.0 * bdp_bytes / std::max(1, lanes);
  return static_cast<size_t>(std::clamp(per_lane, 256.0 * 1024, 16.0 * 1024 * 1024));
}

}  // namespace silk
