#include "cluster/wanem/control_command.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "runtime/core/config.h"

namespace silk::cluster::wanem {
namespace {

absl::Status BadValue(absl::string_view key, absl::string_view value, absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrFormat("control command: %s=\"%s\" is invalid: expected %s", key, value, expected));
}

absl::StatusOr<double> ParseMilliseconds(absl::string_view key, absl::string_view value) {
  auto duration = silk::ParseDuration(std::string(value));
  if (!duration.ok()) return BadValue(key, value, "a duration such as 40ms or 0.5s");
  return absl::ToDoubleMilliseconds(*duration);
}

absl::Status ApplySetting(absl::string_view setting, ControlCommand& command) {
  std::pair<absl::string_view, absl::string_view> key_value = absl::StrSplit(setting, absl::MaxSplits('=', 1));
  auto [key, value] = key_value;
  if (key == "rtt") {
    auto ms = ParseMilliseconds(key, value);
    if (!ms.ok()) return ms.status();
    command.rtt_ms = *ms;
  } else if (key == "jitter") {
    auto ms = ParseMilliseconds(key, value);
    if (!ms.ok()) return ms.status();
    command.jitter_ms = *ms;
  } else if (key == "rate") {
    if (value == "unlimited" || value == "0") {
      command.rate_bps = 0;
    } else {
      auto rate = silk::ParseRate(std::string(value));
      if (!rate.ok()) return BadValue(key, value, "a rate such as 300mbit, 1gbit, 5e8 or unlimited");
      command.rate_bps = *rate;
    }
  } else if (key == "loss") {
    double fraction;
    absl::string_view number = value;
    bool percent = absl::ConsumeSuffix(&number, "%");
    if (!absl::SimpleAtod(number, &fraction)) return BadValue(key, value, "a fraction such as 0.001 or 0.1%");
    if (percent) fraction /= 100;
    if (!(fraction >= 0 && fraction < 1)) return BadValue(key, value, "a loss in [0, 1) or [0%, 100%)");
    command.loss = fraction;
  } else if (key == "queue") {
    uint64_t bytes;
    if (!absl::SimpleAtoi(value, &bytes)) return BadValue(key, value, "a byte count (0 for one BDP)");
    command.queue_bytes = bytes;
  } else if (key == "policer") {
    uint64_t bytes;
    if (!absl::SimpleAtoi(value, &bytes)) return BadValue(key, value, "a burst in bytes (0: shape, not police)");
    command.policer_burst_bytes = bytes;
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "control command: unknown setting \"%s\" (known: rtt, rate, loss, jitter, queue, policer)", setting));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ControlCommand> ParseControlCommand(absl::string_view line) {
  std::vector<absl::string_view> words = absl::StrSplit(absl::StripAsciiWhitespace(line), ' ', absl::SkipEmpty());
  if (words.empty()) return absl::InvalidArgumentError("control command: empty line");
  ControlCommand command;
  absl::string_view verb = words[0];
  if (verb == "ping" || verb == "stats") {
    if (words.size() != 1) {
      return absl::InvalidArgumentError(absl::StrFormat("control command \"%s\" takes no arguments", verb));
    }
    command.kind = verb == "ping" ? ControlCommand::Kind::kPing : ControlCommand::Kind::kStats;
    return command;
  }
  if (verb == "set") {
    command.kind = ControlCommand::Kind::kSet;
  } else if (verb == "cut") {
    command.kind = ControlCommand::Kind::kCut;
  } else if (verb == "heal") {
    command.kind = ControlCommand::Kind::kHeal;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("control command: unknown verb \"%s\" (known: ping, stats, set, cut, heal)", verb));
  }
  size_t settings = 3;  // index of the first setting
  if (command.kind == ControlCommand::Kind::kSet && words.size() >= 2 && absl::StrContains(words[1], '>')) {
    std::pair<absl::string_view, absl::string_view> ends = absl::StrSplit(words[1], absl::MaxSplits('>', 1));
    if (ends.first.empty() || ends.second.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("control command: \"%s\" is not FROM>TO", words[1]));
    }
    command.region_a = std::string(ends.first);
    command.region_b = std::string(ends.second);
    command.one_way = true;
    settings = 2;
  } else if (words.size() < 3) {
    return absl::InvalidArgumentError(absl::StrFormat("control command \"%s\" needs two region names", verb));
  } else {
    command.region_a = std::string(words[1]);
    command.region_b = std::string(words[2]);
  }
  if (command.kind != ControlCommand::Kind::kSet) {
    if (words.size() != 3) {
      return absl::InvalidArgumentError(absl::StrFormat("control command \"%s\" takes only two region names", verb));
    }
    return command;
  }
  if (words.size() == settings) {
    return absl::InvalidArgumentError(
        "control command \"set\" needs at least one of rtt=, rate=, loss=, jitter=, queue=, policer=");
  }
  for (size_t i = settings; i < words.size(); ++i) {
    absl::Status applied = ApplySetting(words[i], command);
    if (!applied.ok()) return applied;
  }
  return command;
}

}  // namespace silk::cluster::wanem
