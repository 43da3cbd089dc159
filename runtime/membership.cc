#include "runtime/membership.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/bootstrap/reconnecting_store.h"
#include "runtime/bootstrap/store_bootstrap.h"
#include "runtime/core/error.h"
#include "runtime/core/log.h"
#include "runtime/core/status_macros.h"

namespace silk {
namespace {

// Keys at the coordinator (one job per coordinator):
//   epoch              the newest decided epoch
//   e<E>/reg/<m>       member m is here for epoch E
//   e<E>/lead          counter: whoever takes 1 leads epoch E (and names itself in e<E>/leader)
//   e<E>/decided       counter: whoever takes 1 writes the decision (a leader, or
//                      a member deciding in place of a leader gone silent)
//   e<E>/members       the decision: "<answered requests>;<ids>"
//   hb/<m>             member m's heartbeat ("<incarnation>.<beat>")
//   requests           counter of join requests; request/<t>: who made request t
//   finished           the job is over: nobody will be admitted any more
//   tiers/<regions>    the tier table measured for that region order
constexpr char kPrefix[] = "silk/elastic/";
constexpr absl::Duration kBeat = absl::Milliseconds(200);
constexpr absl::Duration kPoll = absl::Milliseconds(20);
// A store call that cannot reach the coordinator gives up after this (a
// partition): the caller retries while its own deadline allows.
constexpr absl::Duration kStoreIo = absl::Seconds(3);

std::string Key(const std::string& rest) { return kPrefix + rest; }
std::string EpochKey(uint64_t epoch, const std::string& rest) { return absl::StrFormat("%se%d/%s", kPrefix, epoch, rest); }

std::string Encode(int64_t answered, const std::vector<int>& members) {
  return absl::StrCat(answered, ";", absl::StrJoin(members, ","));
}

absl::StatusOr<MembershipView> Decode(uint64_t epoch, const std::string& value) {
  MembershipView view;
  view.epoch = epoch;
  std::vector<std::string> parts = absl::StrSplit(value, ';');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &view.answered_requests)) {
    return ProtocolError(absl::StrFormat("membership of epoch %d at the coordinator is malformed: \"%s\"", epoch, value));
  }
  for (absl::string_view id : absl::StrSplit(parts[1], ',', absl::SkipEmpty())) {
    int m;
    if (!absl::SimpleAtoi(id, &m)) return ProtocolError(absl::StrFormat("membership of epoch %d: bad id \"%s\"", epoch, id));
    view.members.push_back(m);
  }
  return view;
}

std::vector<int> Minus(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  for (int x : a) {
    if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
  }
  return out;
}

}  // namespace

std::string Membership::BootstrapPrefix(uint64_t epoch) { return EpochKey(epoch, "boot"); }
std::string Membership::TiersKey(const std::string& regions) { return Key("tiers/" + regions); }

absl::StatusOr<std::unique_ptr<Membership>> Membership::Connect(const Config& config) {
  if (!config.elastic) return InvalidArgument("membership: SILK_ELASTIC is not set");
  if (config.master_addr.empty() || config.store_port < 1 || config.env_rank < 0 || config.env_world_size < 1) {
    return InvalidArgument(
        "elastic launch (SILK_ELASTIC=1) needs MASTER_ADDR and MASTER_PORT (the silk-coordinator), RANK (this "
        "member's id) and WORLD_SIZE");
  }
  const auto port = static_cast<uint16_t>(config.store_port);
  auto store = std::make_shared<bootstrap::ReconnectingStore>(config.master_addr, port, kStoreIo);
  // The first contact waits for the coordinator as long as start-up may.
  absl::StatusOr<std::unique_ptr<bootstrap::TcpStoreClient>> probe =
      bootstrap::TcpStoreClient::Connect(config.master_addr, port, config.StartupTimeout());
  if (!probe.ok()) {
    return Prefixed(probe.status(), absl::StrFormat("elastic member %d: reaching the coordinator (MASTER_ADDR, "
                                                    "MASTER_PORT; is silk-coordinator running?): ",
                                                    config.env_rank));
  }
  auto heartbeat_store = std::make_shared<bootstrap::ReconnectingStore>(config.master_addr, port, absl::Seconds(1));
  return std::unique_ptr<Membership>(new Membership(config, std::move(store), std::move(heartbeat_store)));
}

Membership::Membership(const Config& config, std::shared_ptr<bootstrap::Store> store,
                       std::shared_ptr<bootstrap::Store> heartbeat_store)
    : config_(config), member_(config.env_rank), store_(std::move(store)), heartbeat_store_(std::move(heartbeat_store)) {
  heartbeat_ = std::thread([this] { Heartbeat(); });
}

Membership::~Membership() {
  stop_.Notify();
  heartbeat_.join();
}

void Membership::Heartbeat() {
  const std::string key = Key(absl::StrCat("hb/", member_));
  for (int64_t beat = 0; !stop_.HasBeenNotified(); ++beat) {
    // Failures are expected during a partition; the silence is the message.
    heartbeat_store_->Set(key, absl::StrCat(config_.elastic_incarnation, ".", beat)).IgnoreError();
    absl::StatusOr<int64_t> requests = heartbeat_store_->Add(Key("requests"), 0);
    if (requests.ok()) requests_seen_.store(*requests);
    stop_.WaitForNotificationWithTimeout(kBeat);
  }
}

absl::StatusOr<MembershipView> Membership::Enter(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  SILK_ASSIGN_OR_RETURN(std::vector<bool> exists, store_->Check({Key("epoch")}));
  MembershipView none;
  if (!exists[0]) {
    // The job is starting: the first epoch waits for all WORLD_SIZE members.
    for (int m = 0; m < config_.env_world_size; ++m) none.members.push_back(m);
    absl::StatusOr<MembershipView> first = Decide(1, none, -1, /*first=*/true);
    if (first.ok() || KindOf(first.status()) != ErrorKind::kPeerLost) return first;
    Log(LogLevel::kInfo, "member %d: %s; asking to join", member_, first.status().message());
  }
  return Join(none, deadline);
}

absl::StatusOr<MembershipView> Membership::Next(const MembershipView& current, int64_t admit_up_to) {
  absl::StatusOr<MembershipView> next = Decide(current.epoch + 1, current, admit_up_to, false);
  // Left out, or the coordinator out of reach (a partition): ask to join.
  if (next.ok() || KindOf(next.status()) == ErrorKind::kProtocol) return next;
  Log(LogLevel::kWarning, "member %d: %s; asking to join again (for at most %s, SILK_ELASTIC_REJOIN_TIMEOUT)", member_,
      next.status().message(), absl::FormatDuration(config_.elastic_rejoin_timeout));
  return Join(current, absl::Now() + config_.elastic_rejoin_timeout);
}

absl::StatusOr<MembershipView> Membership::Decide(uint64_t epoch, const MembershipView& current, int64_t admit_up_to,
                                                  bool first) {
  SILK_RETURN_IF_ERROR(store_->Set(EpochKey(epoch, absl::StrCat("reg/", member_)), absl::StrCat(config_.elastic_incarnation)));
  SILK_ASSIGN_OR_RETURN(int64_t order, store_->Add(EpochKey(epoch, "lead"), 1));
  if (order == 1) {
    SILK_RETURN_IF_ERROR(store_->Set(EpochKey(epoch, "leader"), absl::StrCat(member_)));
    SILK_RETURN_IF_ERROR(Lead(epoch, current, admit_up_to, first));
  }
  const absl::Duration wait = (first ? config_.StartupTimeout() : config_.timeout) + absl::Seconds(10);
  return Read(epoch, current, wait, /*may_take_over=*/!first);
}

// Whether epoch `epoch`'s leader has been silent for elastic_dead_after, as
// seen by successive calls (`seen` keeps its last heartbeat and when it changed).
bool Membership::LeaderSilent(uint64_t epoch, std::pair<std::string, absl::Time>* seen) {
  absl::StatusOr<std::string> leader = store_->Get(EpochKey(epoch, "leader"), absl::ZeroDuration());
  if (!leader.ok()) return false;  // not chosen yet, or the coordinator out of reach: keep waiting
  absl::StatusOr<std::string> beat = store_->Get(Key(absl::StrCat("hb/", *leader)), absl::ZeroDuration());
  const std::string value = beat.ok() ? *beat : "";
  const absl::Time now = absl::Now();
  if (seen->second == absl::InfinitePast() || seen->first != value) *seen = {value, now};
  return now - seen->second >= config_.elastic_dead_after;
}

// The leader's wait: every expected member registered, or silent for
// elastic_dead_after. Members alive but slow are waited for, up to the
// operations' timeout (the start-up timeout for the first epoch, which waits
// for every member: none can be presumed lost before it ever started).
absl::Status Membership::Lead(uint64_t epoch, const MembershipView& current, int64_t admit_up_to, bool first) {
  std::vector<int> expected = current.members;
  for (int64_t t = current.answered_requests + 1; t <= admit_up_to; ++t) {
    absl::StatusOr<std::string> who = store_->Get(Key(absl::StrCat("request/", t)), absl::Seconds(2));
    int m;
    if (who.ok() && absl::SimpleAtoi(*who, &m) && std::find(expected.begin(), expected.end(), m) == expected.end()) {
      expected.push_back(m);
    }
  }
  std::sort(expected.begin(), expected.end());
  const absl::Time start = absl::Now();
  const absl::Time cap = start + (first ? config_.StartupTimeout() : config_.timeout);
  std::map<int, std::pair<std::string, absl::Time>> last_beat;  // heartbeat value, when it last changed
  std::vector<int> here, lost;
  while (true) {
    std::vector<std::string> keys;
    for (int m : expected) keys.push_back(EpochKey(epoch, absl::StrCat("reg/", m)));
    SILK_ASSIGN_OR_RETURN(std::vector<bool> registered, store_->Check(keys));
    here.clear();
    lost.clear();
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < expected.size(); ++i) {
      if (registered[i]) {
        here.push_back(expected[i]);
        continue;
      }
      if (first) continue;
      absl::StatusOr<std::string> beat = store_->Get(Key(absl::StrCat("hb/", expected[i])), absl::ZeroDuration());
      const std::string value = beat.ok() ? *beat : "";
      auto [it, fresh] = last_beat.try_emplace(expected[i], value, now);
      if (!fresh && it->second.first != value) it->second = {value, now};
      if (now - it->second.second >= config_.elastic_dead_after) lost.push_back(expected[i]);
    }
    if (here.size() + lost.size() == expected.size() || now >= cap) break;
    absl::SleepFor(kPoll);
  }
  if (here.size() + lost.size() < expected.size()) {
    std::vector<int> slow = Minus(Minus(expected, here), lost);
    Log(LogLevel::kWarning, "epoch %d: members %s still beating but not here after %s; going on without them", epoch,
        bootstrap::FormatRanks(slow), absl::FormatDuration(absl::Now() - start));
  }
  if (first && here.size() < expected.size()) {
    return TimeoutError(absl::StrFormat(
        "elastic start-up: members %s did not reach the coordinator within %s (SILK_STARTUP_TIMEOUT)",
        bootstrap::FormatRanks(Minus(expected, here)), absl::FormatDuration(config_.StartupTimeout())));
  }
  // One decision per epoch, even if a member took over from a leader it
  // thought lost while that leader was only slow.
  SILK_ASSIGN_OR_RETURN(int64_t decision, store_->Add(EpochKey(epoch, "decided"), 1));
  if (decision != 1) return absl::OkStatus();
  SILK_RETURN_IF_ERROR(store_->Set(EpochKey(epoch, "members"), Encode(std::max(admit_up_to, current.answered_requests), here)));
  SILK_RETURN_IF_ERROR(store_->Set(Key("epoch"), absl::StrCat(epoch)));
  Log(LogLevel::kInfo, "epoch %d decided by member %d in %s: members %s%s", epoch, member_,
      absl::FormatDuration(absl::Now() - start), bootstrap::FormatRanks(here),
      lost.empty() ? "" : absl::StrCat(", lost ", bootstrap::FormatRanks(lost)));
  return absl::OkStatus();
}

absl::StatusOr<MembershipView> Membership::Read(uint64_t epoch, const MembershipView& previous, absl::Duration timeout,
                                                bool may_take_over) {
  const absl::Time deadline = absl::Now() + timeout;
  std::pair<std::string, absl::Time> leader_seen{"", absl::InfinitePast()};
  absl::StatusOr<std::string> value;
  while (true) {
    const absl::Duration slice = std::min(absl::Seconds(1), std::max(deadline - absl::Now(), absl::ZeroDuration()));
    value = store_->Get(EpochKey(epoch, "members"), slice);
    if (value.ok() || !absl::IsDeadlineExceeded(value.status()) || absl::Now() >= deadline) break;
    // A leader that died deciding would leave everyone waiting: a member
    // decides in its place (admitting no new requests).
    if (may_take_over && LeaderSilent(epoch, &leader_seen)) {
      Log(LogLevel::kWarning, "member %d: the leader of epoch %d went silent; deciding in its place", member_, epoch);
      SILK_RETURN_IF_ERROR(Lead(epoch, previous, -1, false));
      may_take_over = false;
    }
  }
  if (!value.ok()) {
    return Prefixed(value.status(), absl::StrFormat("member %d: waiting for epoch %d's membership: ", member_, epoch));
  }
  SILK_ASSIGN_OR_RETURN(MembershipView view, Decode(epoch, *value));
  auto me = std::find(view.members.begin(), view.members.end(), member_);
  if (me == view.members.end()) {
    return PeerLostError(absl::StrFormat(
        "epoch %d went on without member %d (it was presumed lost: silent for SILK_ELASTIC_DEAD_AFTER, or cut off "
        "from the coordinator)", epoch, member_));
  }
  view.rank = static_cast<int>(me - view.members.begin());
  view.lost = Minus(previous.members, view.members);
  view.joined = Minus(view.members, previous.members);
  return view;
}

// A join request is a ticket; the members answer it at their next admission
// (collectives agree on how many tickets they saw). Until then the process
// registers for each next epoch, so the leader counts it as here.
absl::Status Membership::MarkJobFinished() { return store_->Set(Key("finished"), absl::StrCat(member_)); }

absl::StatusOr<MembershipView> Membership::Join(const MembershipView& previous, absl::Time deadline) {
  absl::Status last = absl::OkStatus();
  int64_t ticket = -1;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::vector<bool>> finished = store_->Check({Key("finished")});
    if (finished.ok() && (*finished)[0]) {
      return AbortedError(absl::StrFormat("member %d: the job finished before this member was admitted", member_));
    }
    if (ticket < 0) {
      absl::StatusOr<int64_t> t = store_->Add(Key("requests"), 1);
      if (t.ok() && store_->Set(Key(absl::StrCat("request/", *t)), absl::StrCat(member_)).ok()) {
        ticket = *t;
        Log(LogLevel::kInfo, "member %d: join request #%d", member_, ticket);
      } else {
        last = t.ok() ? absl::UnavailableError("cannot record the join request") : t.status();
        absl::SleepFor(absl::Milliseconds(500));
        continue;
      }
    }
    absl::StatusOr<std::string> epoch_text = store_->Get(Key("epoch"), absl::Seconds(1));
    uint64_t epoch = 0;
    if (epoch_text.ok() && !absl::SimpleAtoi(*epoch_text, &epoch)) return ProtocolError("bad epoch at the coordinator");
    const uint64_t next = epoch + 1;
    if (!store_->Set(EpochKey(next, absl::StrCat("reg/", member_)), absl::StrCat(config_.elastic_incarnation)).ok()) {
      absl::SleepFor(absl::Milliseconds(500));
      continue;
    }
    const absl::Duration wait = std::min(absl::Seconds(5), std::max(deadline - absl::Now(), absl::ZeroDuration()));
    absl::StatusOr<MembershipView> view = Read(next, previous, wait, /*may_take_over=*/false);
    if (view.ok()) {
      view->rejoined = true;
      return view;
    }
    last = view.status();
  }
  return TimeoutError(absl::StrFormat("member %d: not admitted within %s (SILK_ELASTIC_REJOIN_TIMEOUT): %s", member_,
                                      absl::FormatDuration(config_.elastic_rejoin_timeout), last.message()));
}

}  // namespace silk
