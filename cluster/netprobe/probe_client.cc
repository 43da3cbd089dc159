// The measuring side of silk-netprobe; each prints one JSON object on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cluster/netprobe/probe.h"
#include "cluster/realtime.h"

namespace silk::cluster::netprobe {
namespace {

void SleepUntil(int64_t when_ns) {
  int64_t left = when_ns - NowNs();
  if (left > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(left));
}

// What a sink reported: bytes per kBucketNs of absolute monotonic time.
struct SinkReport {
  int64_t first_ns = 0;
  int64_t last_ns = 0;
  uint64_t total_bytes = 0;
  int64_t first_bucket = 0;
  std::vector<uint64_t> buckets;
};

absl::StatusOr<SinkReport> ParseSinkReport(const std::string& line, const std::string& peer) {
  std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
  SinkReport report;
  size_t count = 0;
  bool ok = words.size() >= 5 && absl::SimpleAtoi(words[0], &report.first_ns) &&
            absl::SimpleAtoi(words[1], &report.last_ns) && absl::SimpleAtoi(words[2], &report.total_bytes) &&
            absl::SimpleAtoi(words[3], &report.first_bucket) && absl::SimpleAtoi(words[4], &count) &&
            words.size() == 5 + count;
  for (size_t i = 0; ok && i < count; ++i) {
    report.buckets.emplace_back();
    ok = absl::SimpleAtoi(words[5 + i], &report.buckets.back());
  }
  if (!ok) return absl::DataLossError(absl::StrFormat("garbled sink report from %s: \"%.80s\"", peer, line));
  return report;
}

struct FlowResult {
  absl::Status status;
  SinkReport report;
  uint64_t sent_bytes = 0;
};

void RunFlow(const ThroughputOptions& options, int64_t end_ns, FlowResult* result) {
  std::string what = "throughput flow to " + options.peer.ToString();
  auto fd = ConnectTcp(options.peer, absl::Seconds(10), absl::Seconds(30));
  if (!fd.ok()) {
    result->status = fd.status();
    return;
  }
  if (!options.congestion.empty() &&
      setsockopt(*fd, IPPROTO_TCP, TCP_CONGESTION, options.congestion.data(), options.congestion.size()) != 0) {
    result->status = absl::InvalidArgumentError(
        absl::StrFormat("%s: congestion control \"%s\": %s", what, options.congestion, std::strerror(errno)));
    close(*fd);
    return;
  }
  std::vector<char> chunk(128 << 10, 'x');
  result->status = SendAll(*fd, "S", 1, what);
  while (result->status.ok() && NowNs() < end_ns) {
    result->status = SendAll(*fd, chunk.data(), chunk.size(), what);
    result->sent_bytes += chunk.size();
  }
  if (result->status.ok()) {
    shutdown(*fd, SHUT_WR);
    auto line = RecvLine(*fd, 1 << 20, what + " (report)");
    if (line.ok()) {
      auto report = ParseSinkReport(*line, options.peer.ToString());
      if (report.ok()) result->report = std::move(*report);
      result->status = report.status();
    } else {
      result->status = line.status();
    }
  }
  close(*fd);
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

}  // namespace

absl::Status MeasureRtt(const RttOptions& options) {
  std::string what = "ping-pong with " + options.peer.ToString();
  auto fd = ConnectTcp(options.peer, absl::Seconds(10), options.timeout);
  if (!fd.ok()) return fd.status();
  absl::Status status = SendAll(*fd, "P", 1, what);
  if (std::string why = RunThreadAtRealTimePriority(kProbePriority); !why.empty()) {
    std::fprintf(stderr, "silk-netprobe: timing at normal priority (%s): a busy machine adds to the round trips\n",
                 why.c_str());
  }
  std::vector<double> rtts_ms;
  std::vector<std::pair<double, double>> timeline;  // (send time since start, rtt) in ms
  int64_t start = NowNs();
  int64_t interval = absl::ToInt64Nanoseconds(options.interval);
  int64_t end = start + absl::ToInt64Nanoseconds(options.duration);
  for (int64_t i = 0; status.ok(); ++i) {
    if (options.duration > absl::ZeroDuration() ? NowNs() >= end : i >= options.count) break;
    SleepUntil(start + i * interval);
    int64_t sent = NowNs();
    char message[8];
    std::memcpy(message, &sent, sizeof(sent));
    status = SendAll(*fd, message, sizeof(message), what);
    if (status.ok()) status = RecvAll(*fd, message, sizeof(message), what);
    if (!status.ok()) break;
    double rtt = (NowNs() - sent) / 1e6;
    rtts_ms.push_back(rtt);
    timeline.emplace_back((sent - start) / 1e6, rtt);
  }
  close(*fd);
  if (!status.ok()) return status;
  if (rtts_ms.empty()) return absl::UnavailableError(what + ": no sample");
  std::string json = absl::StrFormat(
      "{\"peer\": \"%s\", \"start_ms\": %.3f, \"samples\": %d, \"min_ms\": %.3f, \"median_ms\": %.3f, "
      "\"max_ms\": %.3f",
      options.peer.ToString(), start / 1e6, rtts_ms.size(), *std::min_element(rtts_ms.begin(), rtts_ms.end()), Median(rtts_ms),
      *std::max_element(rtts_ms.begin(), rtts_ms.end()));
  if (options.timeline) {
    json += ", \"timeline\": [";
    for (size_t i = 0; i < timeline.size(); ++i) {
      absl::StrAppendFormat(&json, "%s[%.3f, %.3f]", i ? ", " : "", timeline[i].first, timeline[i].second);
    }
    json += "]";
  }
  absl::PrintF("%s}\n", json.c_str());
  return absl::OkStatus();
}

absl::Status MeasureThroughput(const ThroughputOptions& options) {
  int64_t start_ns = NowNs();
  int64_t end_ns = start_ns + absl::ToInt64Nanoseconds(options.seconds);
  std::vector<FlowResult> results(options.flows);
  std::vector<std::thread> flows;
  for (int i = 0; i < options.flows; ++i) flows.emplace_back(RunFlow, std::cref(options), end_ns, &results[i]);
  for (std::thread& flow : flows) flow.join();

  // Sum the receivers' buckets on the shared clock.
  std::vector<uint64_t> buckets;
  int64_t base = start_ns / kBucketNs;
  uint64_t total = 0;
  for (const FlowResult& result : results) {
    if (!result.status.ok()) return result.status;
    total += result.report.total_bytes;
    for (size_t i = 0; i < result.report.buckets.size(); ++i) {
      size_t index = static_cast<size_t>(result.report.first_bucket - base) + i;
      if (index >= buckets.size()) buckets.resize(index + 1, 0);
      buckets[index] += result.report.buckets[i];
    }
  }
  // Steady state: whole buckets after `skip` and before the senders stopped.
  size_t from = static_cast<size_t>((start_ns + absl::ToInt64Nanoseconds(options.skip)) / kBucketNs - base + 1);
  size_t to = std::min(buckets.size(), static_cast<size_t>(end_ns / kBucketNs - base));
  if (from + 2 > to) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "throughput to %s: --seconds must exceed --skip by at least 150 ms", options.peer.ToString()));
  }
  uint64_t steady = 0;
  for (size_t i = from; i < to; ++i) steady += buckets[i];
  double steady_bps = steady * 8.0 / ((to - from) * kBucketNs / 1e9);
  const size_t window = std::min<size_t>(10, to - from);  // peak over 500 ms windows
  double peak_bps = 0;
  for (size_t i = from; i + window <= to; ++i) {
    uint64_t bytes = 0;
    for (size_t j = i; j < i + window; ++j) bytes += buckets[j];
    peak_bps = std::max(peak_bps, bytes * 8.0 / (window * kBucketNs / 1e9));
  }
  absl::PrintF("{\"peer\": \"%s\", \"flows\": %d, \"seconds\": %.3f, \"total_bytes\": %d, \"steady_bps\": %.0f, "
              "\"peak_500ms_bps\": %.0f}\n",
              options.peer.ToString(), options.flows, absl::ToDoubleSeconds(options.seconds), total, steady_bps, peak_bps);
  return absl::OkStatus();
}

absl::Status MeasureUdpLoss(const UdpOptions& options) {
  std::string what = "UDP to " + options.peer.ToString();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrFormat("%s: socket: %s", what, std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(options.peer.port);
  inet_pton(AF_INET, options.peer.host.c_str(), &address.sin_addr);
  SetIoTimeout(fd, absl::Seconds(5));
  uint64_t session = std::random_device{}() * 0x100000001ULL ^ static_cast<uint64_t>(NowNs());
  std::vector<char> datagram(std::max<int>(options.size, 16), 'u');
  std::memcpy(datagram.data(), &session, sizeof(session));
  int64_t start = NowNs();
  int sent = 0;
  for (int i = 0; i < options.count; ++i) {
    SleepUntil(start + static_cast<int64_t>(i * 1e9 / options.rate_pps));
    std::memcpy(datagram.data() + 8, &i, sizeof(i));
    if (sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
        static_cast<ssize_t>(datagram.size())) {
      ++sent;
    }
  }
  close(fd);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let the last datagrams cross the link

  auto query = ConnectTcp(options.peer, absl::Seconds(10), absl::Seconds(10));
  if (!query.ok()) return query.status();
  char request[9] = {'U'};
  std::memcpy(request + 1, &session, sizeof(session));
  absl::Status status = SendAll(*query, request, sizeof(request), what + " (count query)");
  absl::StatusOr<std::string> line = status.ok() ? RecvLine(*query, 64, what + " (count)") : status;
  close(*query);
  uint64_t received = 0;
  if (!line.ok()) return line.status();
  if (!absl::SimpleAtoi(*line, &received)) return absl::DataLossError(what + ": garbled count \"" + *line + "\"");
  absl::PrintF("{\"peer\": \"%s\", \"sent\": %d, \"received\": %d, \"loss\": %.6f}\n", options.peer.ToString(), sent,
              received, sent ? 1.0 - static_cast<double>(received) / sent : 0.0);
  return absl::OkStatus();
}

}  // namespace silk::cluster::netprobe
