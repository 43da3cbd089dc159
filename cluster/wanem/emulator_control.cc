// The emulator's answers to control commands (see control_command.h).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cluster/wanem/emulator.h"
#include "runtime/core/log.h"

namespace silk::cluster::wanem {

std::string Emulator::HandleCommand(absl::string_view line) {
  auto command = ParseControlCommand(line);
  if (!command.ok()) return absl::StrCat("error: ", command.status().message());
  int64_t now_ns = MonotonicNowNs();
  switch (command->kind) {
    case ControlCommand::Kind::kPing:
      return "ok";
    case ControlCommand::Kind::kStats:
      return StatsJson(now_ns);
    default:
      break;
  }
  int a = PortOfRegion(command->region_a);
  int b = PortOfRegion(command->region_b);
  for (auto [index, name] : {std::pair<int, std::string>{a, command->region_a}, {b, command->region_b}}) {
    if (index < 0) return absl::StrFormat("error: region \"%s\" is not in the cluster", name);
  }
  Direction* both[2] = {FindDirection(a, b), FindDirection(b, a)};
  if (both[0] == nullptr || both[1] == nullptr) {
    return absl::StrFormat("error: no link between regions \"%s\" and \"%s\"", command->region_a, command->region_b);
  }
  for (Direction* direction : both) {
    if (command->one_way && direction == both[1]) continue;
    LinkParams params = direction->model.params();
    if (command->kind == ControlCommand::Kind::kSet) {
      if (command->rtt_ms) params.rtt_ms = *command->rtt_ms;
      if (command->rate_bps) params.rate_bps = *command->rate_bps;
      if (command->loss) params.loss = *command->loss;
      if (command->jitter_ms) params.jitter_ms = *command->jitter_ms;
      if (command->queue_bytes) params.queue_bytes = *command->queue_bytes;
      if (command->policer_burst_bytes) params.policer_burst_bytes = *command->policer_burst_bytes;
    } else if (command->kind == ControlCommand::Kind::kCut) {
      params.cut = true;
      // Packets already on the wire are lost with it.
      direction->model.counters().dropped_cut += direction->line.packets();
      direction->line.Clear();
      direction->model.Flush(now_ns);
    } else {
      params.cut = false;
    }
    direction->model.SetParams(params);
  }
  Log(LogLevel::kInfo, "silk-wanem: %s", std::string(line));
  if (absl::Status offloads = UpdateOffloads(); !offloads.ok()) return absl::StrCat("error: ", offloads.message());
  return "ok";
}

std::string Emulator::StatsJson(int64_t now_ns) const {
  std::string json = absl::StrFormat("{\"now_ns\": %d, \"links\": [", now_ns);
  for (size_t i = 0; i < directions_.size(); ++i) {
    const Direction& direction = directions_[i];
    const LinkParams& params = direction.model.params();
    const LinkCounters& counters = direction.model.counters();
    absl::StrAppendFormat(
        &json,
        "%s{\"from\": \"%s\", \"to\": \"%s\", \"rate_bps\": %.0f, \"rtt_ms\": %g, \"jitter_ms\": %g, "
        "\"loss\": %g, \"mtu\": %d, \"queue_limit_bytes\": %d, \"policer_burst_bytes\": %d, \"cut\": %s, "
        "\"backlog_bytes\": %d, "
        "\"in_flight_packets\": %d, \"offered_packets\": %d, \"offered_bytes\": %d, \"delivered_packets\": %d, "
        "\"delivered_bytes\": %d, \"dropped_cut\": %d, \"dropped_loss\": %d, \"dropped_queue\": %d, "
        "\"dropped_policed\": %d, \"dropped_overflow\": %d, \"write_errors\": %d, \"max_late_us\": %.1f, \"mean_late_us\": %.1f}",
        i == 0 ? "" : ", ", ports_[direction.from].region, ports_[direction.to].region, params.rate_bps,
        params.rtt_ms, params.jitter_ms, params.loss, params.mtu, params.QueueLimitBytes(),
        params.policer_burst_bytes, params.cut ? "true" : "false", direction.model.BacklogBytes(now_ns), direction.line.packets(),
        counters.offered_packets, counters.offered_bytes, counters.delivered_packets, counters.delivered_bytes,
        counters.dropped_cut, counters.dropped_loss, counters.dropped_queue, counters.dropped_policed,
        counters.dropped_overflow,
        counters.write_errors, counters.max_late_ns / 1e3,
        counters.delivered_packets + counters.write_errors == 0
            ? 0.0
            : counters.total_late_ns / 1e3 / (counters.delivered_packets + counters.write_errors));
  }
  absl::StrAppendFormat(&json, "], \"unroutable_packets\": %d, \"not_ipv4_packets\": %d}", unroutable_packets_,
                        not_ipv4_packets_);
  return json;
}

}  // namespace silk::cluster::wanem
