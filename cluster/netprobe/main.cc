// silk-netprobe: measures what the virtual cluster's network does.
//
//   silk-netprobe serve [--port P] [--lifetime 120s]
//   silk-netprobe rtt --to ADDR:PORT [--count 20] [--interval 10ms] [--duration 0s] [--timeout 10s] [--timeline]
//   silk-netprobe throughput --to ADDR:PORT [--flows 4] [--seconds 3s] [--skip 1s] [--congestion cubic]
//   silk-netprobe udp --to ADDR:PORT [--count 10000] [--rate 5000] [--size 1000]
//
// Clients print one JSON object; errors go to stderr with exit status 1.
#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "cluster/netprobe/probe.h"
#include "runtime/core/config.h"

namespace {

using namespace silk::cluster::netprobe;

int Usage() {
  std::fprintf(stderr,
               "usage: silk-netprobe serve [--port P] [--lifetime 120s]\n"
               "       silk-netprobe rtt --to ADDR:PORT [--count N] [--interval 10ms] [--duration D] [--timeout 10s] "
               "[--timeline]\n"
               "       silk-netprobe throughput --to ADDR:PORT [--flows N] [--seconds 3s] [--skip 1s] [--congestion CC]\n"
               "       silk-netprobe udp --to ADDR:PORT [--count N] [--rate PPS] [--size BYTES]\n");
  return 2;
}

// Flags as name -> value; a flag with no value ("--timeline") maps to "".
bool ParseFlags(int argc, char** argv, std::map<std::string, std::string>* flags) {
  for (int i = 2; i < argc; ++i) {
    std::string name = argv[i];
    if (name.rfind("--", 0) != 0) return false;
    if (name == "--timeline") {
      (*flags)[name] = "";
    } else if (i + 1 < argc) {
      (*flags)[name] = argv[++i];
    } else {
      return false;
    }
  }
  return true;
}

class FlagReader {
 public:
  explicit FlagReader(std::map<std::string, std::string> flags) : flags_(std::move(flags)) {}
  template <typename Number>
  void Int(const char* name, Number* out) {
    auto it = flags_.find(name);
    if (it == flags_.end()) return;
    if (!absl::SimpleAtoi(it->second, out) || *out <= 0) Fail(name, it->second, "a positive integer");
    flags_.erase(it);
  }
  void Duration(const char* name, absl::Duration* out) {
    auto it = flags_.find(name);
    if (it == flags_.end()) return;
    auto parsed = silk::ParseDuration(it->second);
    if (!parsed.ok()) return Fail(name, it->second, "a duration such as 250ms or 3s");
    *out = *parsed;
    flags_.erase(it);
  }
  void String(const char* name, std::string* out) {
    auto it = flags_.find(name);
    if (it == flags_.end()) return;
    *out = it->second;
    flags_.erase(it);
  }
  void Peer(Endpoint* out) {
    auto it = flags_.find("--to");
    if (it == flags_.end()) return Fail("--to", "", "ADDR:PORT of a silk-netprobe server");
    auto parsed = ParseEndpoint(it->second);
    if (!parsed.ok()) return Fail("--to", it->second, "IPv4 ADDR:PORT");
    *out = *parsed;
    flags_.erase(it);
  }
  bool Has(const char* name) { return flags_.erase(name) > 0; }
  // True when every flag was understood.
  bool Done() {
    for (const auto& [name, value] : flags_) {
      std::fprintf(stderr, "silk-netprobe: unknown flag %s\n", name.c_str());
      ok_ = false;
    }
    return ok_;
  }

 private:
  void Fail(const char* name, const std::string& value, const char* expected) {
    std::fprintf(stderr, "silk-netprobe: %s \"%s\" is invalid: expected %s\n", name, value.c_str(), expected);
    ok_ = false;
  }
  std::map<std::string, std::string> flags_;
  bool ok_ = true;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::string mode = argv[1];
  std::map<std::string, std::string> parsed;
  if (!ParseFlags(argc, argv, &parsed)) return Usage();
  FlagReader flags(std::move(parsed));
  absl::Status status;
  if (mode == "serve") {
    ServeOptions options;
    int port = 0;
    flags.Int("--port", &port);
    options.port = static_cast<uint16_t>(port);
    flags.Duration("--lifetime", &options.lifetime);
    if (!flags.Done() || port > 65535) return Usage();
    status = Serve(options);
  } else if (mode == "rtt") {
    RttOptions options;
    flags.Peer(&options.peer);
    flags.Int("--count", &options.count);
    flags.Duration("--interval", &options.interval);
    flags.Duration("--duration", &options.duration);
    flags.Duration("--timeout", &options.timeout);
    options.timeline = flags.Has("--timeline");
    if (!flags.Done()) return Usage();
    status = MeasureRtt(options);
  } else if (mode == "throughput") {
    ThroughputOptions options;
    flags.Peer(&options.peer);
    flags.Int("--flows", &options.flows);
    flags.Duration("--seconds", &options.seconds);
    flags.Duration("--skip", &options.skip);
    flags.String("--congestion", &options.congestion);
    if (!flags.Done()) return Usage();
    status = MeasureThroughput(options);
  } else if (mode == "udp") {
    UdpOptions options;
    flags.Peer(&options.peer);
    flags.Int("--count", &options.count);
    flags.Int("--rate", &options.rate_pps);
    flags.Int("--size", &options.size);
    if (!flags.Done()) return Usage();
    status = MeasureUdpLoss(options);
  } else {
    return Usage();
  }
  if (!status.ok()) {
    std::fprintf(stderr, "silk-netprobe %s: %s\n", mode.c_str(), std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
