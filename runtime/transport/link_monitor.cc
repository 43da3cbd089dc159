#include "runtime/transport/link_monitor.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"

namespace silk::transport {
namespace {

constexpr size_t kEndedKept = 16;

std::string Clock(absl::Time t) { return absl::FormatTime("%H:%M:%E3S", t, absl::LocalTimeZone()); }

std::string Seconds(absl::Duration d) { return absl::StrFormat("%.1f s", absl::ToDoubleSeconds(d)); }

}  // namespace

std::string Outage::Describe(absl::Time now) const {
  std::string text = absl::StrFormat("%s: no traffic from any of %d peers since %s (%s)", link, peers, Clock(since),
                                     Seconds(length(now)));
  if (!ongoing()) absl::StrAppendFormat(&text, ", back at %s", Clock(healed));
  return text;
}

LinkMonitor::LinkMonitor(int world_size, absl::Duration detect_after, absl::Duration tolerance,
                         bool tolerance_bounds_waits)
    : detect_after_(detect_after),
      tolerance_(tolerance),
      tolerance_bounds_waits_(tolerance_bounds_waits),
      link_of_(world_size, -1),
      last_heard_ns_(new std::atomic<int64_t>[world_size]) {
  for (int r = 0; r < world_size; ++r) last_heard_ns_[r].store(0);  // never: not watched until first heard
}

void LinkMonitor::AddLink(const std::string& name, const std::vector<int>& peers) {
  absl::MutexLock lock(&mu_);
  auto it = std::find_if(links_.begin(), links_.end(), [&](const Link& l) { return l.name == name; });
  if (it == links_.end()) it = links_.insert(links_.end(), Link{name, {}, std::nullopt});
  for (int peer : peers) {
    if (peer < 0 || peer >= static_cast<int>(link_of_.size()) || link_of_[peer] >= 0) continue;
    link_of_[peer] = static_cast<int>(it - links_.begin());
    it->peers.push_back(peer);
  }
}

absl::Time LinkMonitor::LastHeard(const Link& link) const {
  int64_t latest = 0;
  for (int peer : link.peers) latest = std::max(latest, last_heard_ns_[peer].load(std::memory_order_relaxed));
  return latest == 0 ? absl::InfinitePast() : absl::FromUnixNanos(latest);
}

void LinkMonitor::Check(absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (Link& link : links_) {
    const absl::Time heard = LastHeard(link);
    if (heard == absl::InfinitePast()) continue;  // still starting up: start-up has deadlines of its own
    if (!link.outage && now - heard >= detect_after_) {
      link.outage = Outage{link.name, static_cast<int>(link.peers.size()), heard, now};
      Log(LogLevel::kWarning, "%s; waiting up to %s (SILK_WAN_OUTAGE_TOLERANCE) for it to come back",
          link.outage->Describe(now), absl::FormatDuration(tolerance_));
    } else if (link.outage && heard > link.outage->since) {
      link.outage->healed = heard;
      Log(LogLevel::kWarning, "%s: traffic is back after %s", link.name, Seconds(link.outage->length(now)));
      ended_.push_back(*link.outage);
      if (ended_.size() > kEndedKept) ended_.erase(ended_.begin());
      link.outage.reset();
    }
  }
}

std::optional<Outage> LinkMonitor::Current() const {
  absl::MutexLock lock(&mu_);
  std::optional<Outage> longest;
  for (const Link& link : links_) {
    if (link.outage && (!longest || link.outage->since < longest->since)) longest = link.outage;
  }
  return longest;
}

std::vector<int> LinkMonitor::SilentPeers(absl::Time now, absl::Duration silent_for) const {
  absl::MutexLock lock(&mu_);
  std::vector<int> peers;
  for (const Link& link : links_) {
    if (link.outage && now - link.outage->since >= silent_for) {
      peers.insert(peers.end(), link.peers.begin(), link.peers.end());
    }
  }
  return peers;
}

std::optional<absl::Time> LinkMonitor::VerdictDue(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  std::optional<absl::Time> due;
  for (const Link& link : links_) {
    if (link.outage) continue;
    const absl::Time heard = LastHeard(link);
    if (heard == absl::InfinitePast()) continue;
    if (now - heard >= detect_after_ / 2 && (!due || heard + detect_after_ > *due)) due = heard + detect_after_;
  }
  return due;
}

std::optional<Outage> LinkMonitor::Since(absl::Time from) const {
  if (std::optional<Outage> current = Current()) return current;
  absl::MutexLock lock(&mu_);
  for (auto it = ended_.rbegin(); it != ended_.rend(); ++it) {
    if (it->healed >= from) return *it;
  }
  return std::nullopt;
}

absl::Time LinkMonitor::StretchDeadline(absl::Time started, absl::Time deadline,
                                        absl::Duration verdict_margin) const {
  std::optional<Outage> outage = Since(started);
  if (!outage) {
    // A link going quiet may be an outage about to be declared: wait for the verdict.
    std::optional<absl::Time> due = VerdictDue(absl::Now());
    return due ? std::max(deadline, *due + verdict_margin) : deadline;
  }
  if (outage->ongoing()) {
    return tolerance_bounds_waits_ ? outage->since + tolerance_ : std::max(deadline, outage->since + tolerance_);
  }
  return deadline + std::min(outage->length(absl::Now()), tolerance_);
}

absl::Status LinkMonitor::OutageError() const {
  std::optional<Outage> outage = Current();
  if (!outage) return absl::OkStatus();
  return PeerLostError(absl::StrFormat("%s, longer than SILK_WAN_OUTAGE_TOLERANCE (%s)",
                                       outage->Describe(absl::Now()), absl::FormatDuration(tolerance_)));
}

}  // namespace silk::transport
