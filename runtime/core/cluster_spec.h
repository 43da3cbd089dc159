// Loading and querying a cluster spec (runtime/core/cluster_spec.proto, text format).
//
//   SILK_ASSIGN_OR_RETURN(ClusterSpec spec, LoadSpec("cluster/specs/xinjiang-chongqing.textproto"));
//   SILK_ASSIGN_OR_RETURN(std::string region, RegionOfNode(spec, "cq1"));   // "chongqing"
//   const Link* wan = FindLink(spec, "xinjiang", "chongqing");              // either order
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "runtime/core/cluster_spec.pb.h"

namespace silk::cluster {

// Reads and validates a text-format spec; errors name the file and the problem.
absl::StatusOr<ClusterSpec> LoadSpec(const std::string& path);

// Parses and validates spec text; `source` names it in error messages.
absl::StatusOr<ClusterSpec> ParseSpec(std::string_view text, std::string_view source);

// Checks a spec: unique region/node names and addresses, valid IPv4 addresses
// and subnets, nodes inside their region's subnet, links between two distinct
// existing regions at most once, positive bandwidth, sane rtt/loss/jitter/mtu.
absl::Status ValidateSpec(const ClusterSpec& spec, std::string_view source);

// The name of the region that holds `node`, or NotFound.
absl::StatusOr<std::string> RegionOfNode(const ClusterSpec& spec, std::string_view node);

// The link between regions a and b (in either order), or nullptr.
const Link* FindLink(const ClusterSpec& spec, std::string_view a, std::string_view b);

// The link's MTU, with 0 read as the default of 1500.
uint32_t LinkMtu(const Link& link);

// An IPv4 subnet in host byte order.
struct Ipv4Subnet {
  uint32_t network = 0;
  int prefix_length = 0;
  uint32_t Mask() const { return prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length); }
  bool Contains(uint32_t address) const { return (address & Mask()) == network; }
};

// "198.18.1.7" -> host-order address.
absl::StatusOr<uint32_t> ParseIpv4(std::string_view text);
// "198.18.1.0/24" -> subnet; host bits must be zero.
absl::StatusOr<Ipv4Subnet> ParseIpv4Subnet(std::string_view text);

}  // namespace silk::cluster
