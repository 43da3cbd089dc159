// Liveness of the long links (across the WAN), per link rather than per
// connection: a partition is known within about a second, and named as one,
// whatever TCP's retransmission timers are doing.
//
// Every peer across a monitored link sends something at least every
// heartbeat interval (a heartbeat frame when it has nothing else), so a link
// none of whose peers has been heard for `detect_after` is silent: an outage.
// The transport's progress loops report what they hear (Heard); one of them
// calls Check between waits. The monitor keeps the outage in effect and the
// last one that ended, so that waits can be stretched by how long the link
// was down, up to the tolerance.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace silk::transport {

struct Outage {
  std::string link;       // "WAN xinjiang<->chongqing"
  int peers = 0;          // how many peers across it went silent
  absl::Time since;       // the last time any of them was heard
  absl::Time detected;    // when this rank concluded the link was down
  absl::Time healed = absl::InfiniteFuture();  // when traffic came back; InfiniteFuture while in effect

  bool ongoing() const { return healed == absl::InfiniteFuture(); }
  absl::Duration length(absl::Time now) const { return (ongoing() ? now : healed) - since; }
  // "WAN xinjiang<->chongqing: no traffic from any of 4 peers since 14:02:11.350 (2.1 s)"
  std::string Describe(absl::Time now) const;
};

class LinkMonitor {
 public:
  // `tolerance_bounds_waits`: an outage ends every wait once it has lasted
  // `tolerance`, even one whose own deadline is later (an elastic job would
  // rather go on without the far side than wait out the operation's timeout);
  // otherwise an outage only ever lengthens waits.
  LinkMonitor(int world_size, absl::Duration detect_after, absl::Duration tolerance,
              bool tolerance_bounds_waits = false);

  // Before any Heard or Check: `peers` are reached across the link `name`.
  void AddLink(const std::string& name, const std::vector<int>& peers);
  bool monitors(int peer) const { return link_of_[peer] >= 0; }

  // Any thread: bytes from `peer` arrived just now.
  void Heard(int peer) { last_heard_ns_[peer].store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed); }
  // One thread, regularly: notices links going silent and coming back (and logs both).
  void Check(absl::Time now);

  // The outage in effect (the longest one if several links are down).
  std::optional<Outage> Current() const;
  // The peers across the links that are down at `now` and have been silent for at least `silent_for`.
  std::vector<int> SilentPeers(absl::Time now, absl::Duration silent_for) const;
  // When a link that has been silent for half of `detect_after`, but is not
  // yet declared down, will be if it stays silent: a wait ending before then
  // should wait for the verdict rather than report a plain timeout.
  std::optional<absl::Time> VerdictDue(absl::Time now) const;
  // The most recent outage that overlapped [from, now], ongoing or ended.
  std::optional<Outage> Since(absl::Time from) const;
  // Transport::StretchDeadline and OutageError for the transport that owns
  // this monitor. `verdict_margin`: how long past a pending verdict to wait
  // for it to be reached (the checking loop's period).
  absl::Time StretchDeadline(absl::Time started, absl::Time deadline, absl::Duration verdict_margin) const;
  absl::Status OutageError() const;
  absl::Duration tolerance() const { return tolerance_; }
  absl::Duration detect_after() const { return detect_after_; }

 private:
  struct Link {
    std::string name;
    std::vector<int> peers;
    std::optional<Outage> outage;  // in effect
  };

  // When a peer across `link` was last heard; InfinitePast while none ever was.
  absl::Time LastHeard(const Link& link) const;

  const absl::Duration detect_after_;
  const absl::Duration tolerance_;
  const bool tolerance_bounds_waits_;
  std::vector<int> link_of_;  // per rank: index into links_, -1 when not monitored
  std::unique_ptr<std::atomic<int64_t>[]> last_heard_ns_;
  mutable absl::Mutex mu_;
  std::vector<Link> links_ ABSL_GUARDED_BY(mu_);
  std::vector<Outage> ended_ ABSL_GUARDED_BY(mu_);  // the last few, newest last
};

}  // namespace silk::transport
