#include "runtime/core/cluster_spec.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "runtime/core/status_macros.h"

namespace silk::cluster {
namespace {

// Collects the text parser's complaints so the error says where the file is wrong.
class ErrorList : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    errors_.push_back(absl::StrFormat("line %d column %d: %s", line + 1, column + 1, message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {}
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

absl::Status Invalid(std::string_view source, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrFormat("cluster spec %s: %s", source, problem));
}

absl::Status ValidateRegions(const ClusterSpec& spec, std::string_view source) {
  if (spec.regions_size() == 0) return Invalid(source, "no regions");
  absl::flat_hash_set<std::string> region_names;
  absl::flat_hash_map<std::string, std::string> node_of_name;     // node name -> region
  absl::flat_hash_map<uint32_t, std::string> node_of_address;     // address -> node name
  std::vector<std::pair<Ipv4Subnet, std::string>> subnets;
  for (const Region& region : spec.regions()) {
    if (region.name().empty()) return Invalid(source, "a region has no name");
    if (!region_names.insert(region.name()).second) {
      return Invalid(source, absl::StrFormat("region \"%s\" is defined twice", region.name()));
    }
    if (region.nodes_size() == 0) {
      return Invalid(source, absl::StrFormat("region \"%s\" has no nodes", region.name()));
    }
    std::optional<Ipv4Subnet> subnet;
    if (!region.subnet().empty()) {
      auto parsed = ParseIpv4Subnet(region.subnet());
      if (!parsed.ok()) {
        return Invalid(source, absl::StrFormat("region \"%s\": %s", region.name(), parsed.status().message()));
      }
      for (const auto& [other, other_name] : subnets) {
        int shorter = std::min(other.prefix_length, parsed->prefix_length);
        Ipv4Subnet common{parsed->network, shorter};
        common.network &= common.Mask();
        if (common.Contains(other.network)) {
          return Invalid(source, absl::StrFormat("subnets of regions \"%s\" (%s) and \"%s\" overlap", other_name,
                                                 region.subnet(), region.name()));
        }
      }
      subnets.emplace_back(*parsed, region.name());
      subnet = *parsed;
    } else if (!region.gateway().empty()) {
      return Invalid(source, absl::StrFormat("region \"%s\" has a gateway but no subnet", region.name()));
    }
    if (!region.gateway().empty()) {
      auto gateway = ParseIpv4(region.gateway());
      if (!gateway.ok() || !subnet->Contains(*gateway)) {
        return Invalid(source, absl::StrFormat("region \"%s\": gateway \"%s\" is not an address in subnet %s",
                                               region.name(), region.gateway(), region.subnet()));
      }
    }
    for (const Node& node : region.nodes()) {
      if (node.name().empty()) {
        return Invalid(source, absl::StrFormat("a node in region \"%s\" has no name", region.name()));
      }
      auto [it, inserted] = node_of_name.emplace(node.name(), region.name());
      if (!inserted) {
        return Invalid(source, absl::StrFormat("node name \"%s\" is used twice (regions \"%s\" and \"%s\")",
                                               node.name(), it->second, region.name()));
      }
      auto address = ParseIpv4(node.address());
      if (!address.ok()) {
        return Invalid(source, absl::StrFormat("node \"%s\": %s", node.name(), address.status().message()));
      }
      auto [at, fresh] = node_of_address.emplace(*address, node.name());
      if (!fresh) {
        return Invalid(source, absl::StrFormat("address %s is used by both node \"%s\" and node \"%s\"",
                                               node.address(), at->second, node.name()));
      }
      if (node.slots() == 0) {
        return Invalid(source, absl::StrFormat("node \"%s\" has no slots (need at least 1)", node.name()));
      }
      if (subnet && !subnet->Contains(*address)) {
        return Invalid(source, absl::StrFormat("node \"%s\" address %s is outside region \"%s\" subnet %s",
                                               node.name(), node.address(), region.name(), region.subnet()));
      }
      if (!region.gateway().empty() && region.gateway() == node.address()) {
        return Invalid(source, absl::StrFormat("node \"%s\" uses the gateway address %s of region \"%s\"",
                                               node.name(), node.address(), region.name()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLinks(const ClusterSpec& spec, std::string_view source) {
  absl::flat_hash_set<std::string> region_names;
  for (const Region& region : spec.regions()) region_names.insert(region.name());
  absl::flat_hash_set<std::pair<std::string, std::string>> pairs;
  for (const Link& link : spec.links()) {
    std::string name = absl::StrFormat("link %s-%s", link.region_a(), link.region_b());
    for (const std::string& end : {link.region_a(), link.region_b()}) {
      if (!region_names.contains(end)) {
        return Invalid(source, absl::StrFormat("%s: region \"%s\" is not defined", name, end));
      }
    }
    if (link.region_a() == link.region_b()) {
      return Invalid(source, absl::StrFormat("%s joins a region to itself", name));
    }
    auto key = std::minmax(link.region_a(), link.region_b());
    if (!pairs.insert({key.first, key.second}).second) return Invalid(source, name + " is defined twice");
    if (link.bandwidth_bps() == 0) return Invalid(source, name + ": bandwidth_bps must be positive");
    if (!(link.rtt_ms() >= 0) || !std::isfinite(link.rtt_ms())) {
      return Invalid(source, absl::StrFormat("%s: rtt_ms %g must be zero or positive", name, link.rtt_ms()));
    }
    if (!(link.loss() >= 0 && link.loss() < 1)) {
      return Invalid(source, absl::StrFormat("%s: loss %g must be a fraction in [0, 1)", name, link.loss()));
    }
    if (!(link.jitter_ms() >= 0) || !std::isfinite(link.jitter_ms())) {
      return Invalid(source, absl::StrFormat("%s: jitter_ms %g must be zero or positive", name, link.jitter_ms()));
    }
    if (link.mtu() != 0 && (link.mtu() < 576 || link.mtu() > 65535)) {
      return Invalid(source, absl::StrFormat("%s: mtu %d must be in [576, 65535] (or 0 for 1500)", name, link.mtu()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint32_t> ParseIpv4(std::string_view text) {
  // inet_pton reads a C string: it would stop at a NUL inside `text` and
  // never see what follows ("198.18.2.1\0junk").
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat("\"%s\" is not an IPv4 address (it holds a NUL byte)",
                                                      absl::CEscape(absl::string_view(text.data(), text.size()))));
  }
  in_addr parsed{};
  if (inet_pton(AF_INET, std::string(text).c_str(), &parsed) != 1) {
    return absl::InvalidArgumentError(absl::StrFormat("\"%s\" is not an IPv4 address", text));
  }
  return ntohl(parsed.s_addr);
}

absl::StatusOr<Ipv4Subnet> ParseIpv4Subnet(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat("\"%s\" is not an IPv4 subnet like 198.18.1.0/24", text));
  }
  // Decimal digits only: SimpleAtoi alone also takes " 24", "24 " and "+24",
  // which the virtual cluster's tools (Python's ipaddress) then refuse.
  std::string_view prefix = text.substr(slash + 1);
  int prefix_length = -1;
  if (prefix.empty() || !std::all_of(prefix.begin(), prefix.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(std::string(prefix), &prefix_length) || prefix_length > 32) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "\"%s\" is not an IPv4 subnet like 198.18.1.0/24: the prefix length must be 0 to 32 in decimal digits", text));
  }
  auto network = ParseIpv4(text.substr(0, slash));
  if (!network.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("\"%s\" is not an IPv4 subnet like 198.18.1.0/24: %s",
                                                      absl::CEscape(absl::string_view(text.data(), text.size())),
                                                      network.status().message()));
  }
  Ipv4Subnet subnet{*network, prefix_length};
  if ((subnet.network & subnet.Mask()) != subnet.network) {
    return absl::InvalidArgumentError(absl::StrFormat("subnet \"%s\" has host bits set", text));
  }
  return subnet;
}

absl::Status ValidateSpec(const ClusterSpec& spec, std::string_view source) {
  SILK_RETURN_IF_ERROR(ValidateRegions(spec, source));
  return ValidateLinks(spec, source);
}

absl::StatusOr<ClusterSpec> ParseSpec(std::string_view text, std::string_view source) {
  ClusterSpec spec;
  ErrorList errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &spec)) {
    return Invalid(source, "not a valid text-format ClusterSpec: " + errors.Joined());
  }
  SILK_RETURN_IF_ERROR(ValidateSpec(spec, source));
  return spec;
}

absl::StatusOr<ClusterSpec> LoadSpec(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrFormat("cluster spec %s: cannot open the file", path));
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrFormat("cluster spec %s: read failed", path));
  return ParseSpec(text.str(), path);
}

absl::StatusOr<std::string> RegionOfNode(const ClusterSpec& spec, std::string_view node) {
  for (const Region& region : spec.regions()) {
    for (const Node& candidate : region.nodes()) {
      if (candidate.name() == node) return region.name();
    }
  }
  return absl::NotFoundError(absl::StrFormat("node \"%s\" is in no region of cluster spec \"%s\"", node, spec.name()));
}

const Link* FindLink(const ClusterSpec& spec, std::string_view a, std::string_view b) {
  for (const Link& link : spec.links()) {
    if ((link.region_a() == a && link.region_b() == b) || (link.region_a() == b && link.region_b() == a)) {
      return &link;
    }
  }
  return nullptr;
}

uint32_t LinkMtu(const Link& link) { return link.mtu() == 0 ? 1500 : link.mtu(); }

}  // namespace silk::cluster
