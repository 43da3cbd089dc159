// What the ranks check in each other's start-up records (RankInfo, exchanged
// once through the bootstrap) before any connection is made: a rank that
// failed and published its reason, settings that must agree, and which ranks
// truly share a node. Every rank derives the same verdict from the same
// records, so all of them fail together, at once, with the same message.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/rank_info.pb.h"

namespace silk {

// The error of the lowest rank that published a start-up failure, as seen by
// `self` ("rank 3 could not start: ..."; kind peer lost); OK when none did.
absl::Status PublishedStartupFailure(const std::vector<RankInfo>& infos, int self);

// Every value that must agree (protocol version, job token, cluster spec,
// lanes, WAN lanes, chunk size, tier probe, shared memory) compared across all
// ranks; a mismatch error names the setting and which ranks use which value.
absl::Status CheckAgreement(const std::vector<RankInfo>& infos);

// The node name each rank is placed under: its own (host name or SILK_NODE),
// unless ranks of different identities (other machines, other network
// namespaces) claim the same name; then each identity after the first gets
// "<name>#2", "#3", ... in rank order, so they are different nodes.
std::vector<std::string> PlacementNodeNames(const std::vector<RankInfo>& infos);

// 16 hex digits of HMAC-SHA256(key, message): the spec's and the token's
// digests (keyed by the token, so the digest says nothing of a strong token).
std::string ShortDigest(const std::string& key, const std::string& message);

}  // namespace silk
