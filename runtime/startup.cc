#include "runtime/startup.h"

#include <functional>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/bootstrap/store_bootstrap.h"
#include "runtime/core/error.h"
#include "runtime/transport/handshake.h"

namespace silk {
namespace {

// One value every rank must use alike: `key` is compared, `shown` is what a
// message prints for it.
struct Setting {
  const char* name;
  std::function<std::string(const RankInfo&)> key;
  std::function<std::string(const RankInfo&)> shown;
};

const std::vector<Setting>& Settings() {
  static const auto* settings = new std::vector<Setting>{
      {"the wire protocol version (ranks run different Silk builds)",
       [](const RankInfo& r) { return absl::StrCat(r.protocol_version()); },
       [](const RankInfo& r) { return absl::StrCat(r.protocol_version()); }},
      {"SILK_JOB_TOKEN", [](const RankInfo& r) { return r.token_digest(); },
       [](const RankInfo& r) { return r.token_digest().empty() ? "none" : "digest " + r.token_digest(); }},
      {"the cluster spec (SILK_CLUSTER_SPEC)", [](const RankInfo& r) { return r.spec_digest(); },
       [](const RankInfo& r) {
         return r.spec_digest().empty() ? std::string("none")
                                        : absl::StrFormat("%s (digest %s)", r.spec_path(), r.spec_digest());
       }},
      {"SILK_LANES", [](const RankInfo& r) { return absl::StrCat(r.lanes()); },
       [](const RankInfo& r) { return absl::StrCat(r.lanes()); }},
      {"SILK_WAN_LANES (or SILK_LINK_RATE/SILK_LINK_RTT, which size it)",
       [](const RankInfo& r) { return absl::StrCat(r.wan_lanes()); },
       [](const RankInfo& r) { return absl::StrCat(r.wan_lanes()); }},
      {"SILK_CHUNK_BYTES", [](const RankInfo& r) { return absl::StrCat(r.chunk_bytes()); },
       [](const RankInfo& r) { return absl::StrCat(r.chunk_bytes()); }},
      {"SILK_PROBE_TIERS", [](const RankInfo& r) { return absl::StrCat(r.probe_tiers() ? 1 : 0); },
       [](const RankInfo& r) { return absl::StrCat(r.probe_tiers() ? 1 : 0); }},
      {"SILK_SHM", [](const RankInfo& r) { return absl::StrCat(r.shm() ? 1 : 0); },
       [](const RankInfo& r) { return absl::StrCat(r.shm() ? 1 : 0); }},
      {"SILK_FAST_PATH", [](const RankInfo& r) { return absl::StrCat(r.fast_path() ? 1 : 0); },
       [](const RankInfo& r) { return absl::StrCat(r.fast_path() ? 1 : 0); }},
      {"SILK_NODE_SLOTS", [](const RankInfo& r) { return absl::StrCat(r.node_slots() ? 1 : 0); },
       [](const RankInfo& r) { return absl::StrCat(r.node_slots() ? 1 : 0); }},
  };
  return *settings;
}

// "rank 0 uses 1048576; rank 1 uses 2097152": each distinct value once, in
// order of its lowest rank, with the ranks that use it.
std::string WhoUsesWhat(const std::vector<RankInfo>& infos, const Setting& setting) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<int>> ranks;
  std::map<std::string, std::string> shown;
  for (int r = 0; r < static_cast<int>(infos.size()); ++r) {
    const std::string key = setting.key(infos[r]);
    if (ranks.find(key) == ranks.end()) {
      order.push_back(key);
      shown[key] = setting.shown(infos[r]);
    }
    ranks[key].push_back(r);
  }
  std::vector<std::string> parts;
  for (const std::string& key : order) {
    const std::vector<int>& who = ranks[key];
    parts.push_back(absl::StrFormat("%s %s use%s %s", who.size() == 1 ? "rank" : "ranks",
                                    bootstrap::FormatRanks(who), who.size() == 1 ? "s" : "", shown[key]));
  }
  return absl::StrJoin(parts, "; ");
}

}  // namespace

std::string ShortDigest(const std::string& key, const std::string& message) {
  return absl::BytesToHexString(transport::HmacSha256(key, message).substr(0, 8));
}

absl::Status PublishedStartupFailure(const std::vector<RankInfo>& infos, int self) {
  std::vector<int> failed;
  for (const RankInfo& info : infos) {
    if (!info.startup_error().empty()) failed.push_back(info.rank());
  }
  if (failed.empty()) return absl::OkStatus();
  const RankInfo& first = infos[failed.front()];
  const std::string others =
      failed.size() > 1 ? absl::StrFormat(" (ranks %s all failed at start-up)", bootstrap::FormatRanks(failed)) : "";
  return PeerLostError(absl::StrFormat("rank %d could not start, so rank %d cannot either: %s: %s%s", first.rank(),
                                       self, ErrorKindName(static_cast<ErrorKind>(first.startup_error_kind())),
                                       first.startup_error(), others));
}

absl::Status CheckAgreement(const std::vector<RankInfo>& infos) {
  std::vector<std::string> disagreements;
  for (const Setting& setting : Settings()) {
    bool differs = false;
    for (const RankInfo& info : infos) differs |= setting.key(info) != setting.key(infos[0]);
    if (differs) disagreements.push_back(absl::StrFormat("%s: %s", setting.name, WhoUsesWhat(infos, setting)));
  }
  if (disagreements.empty()) return absl::OkStatus();
  return MismatchError(absl::StrFormat("ranks disagree on settings that must be the same on every rank: %s",
                                       absl::StrJoin(disagreements, "; and on ")));
}

std::vector<std::string> PlacementNodeNames(const std::vector<RankInfo>& infos) {
  // name -> the identities seen under it, in rank order.
  std::map<std::string, std::vector<std::string>> identities;
  std::vector<std::string> names;
  for (const RankInfo& info : infos) {
    std::vector<std::string>& seen = identities[info.node()];
    size_t index = 0;
    while (index < seen.size() && seen[index] != info.node_identity()) ++index;
    if (index == seen.size()) seen.push_back(info.node_identity());
    names.push_back(index == 0 ? info.node() : absl::StrFormat("%s#%d", info.node(), index + 1));
  }
  return names;
}

}  // namespace silk
