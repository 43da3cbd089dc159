// Fuzzes the cluster spec loader (text-format protobuf, then validation) with
// the bytes of a spec file. Beyond "no crash": what ParseSpec accepts keeps
// the promises of cluster_spec.h, which the virtual cluster and the runtime
// rely on: every node is found in its region, every address and subnet is
// exactly what it looks like (cluster/vcluster hands them to `ip` and
// Python's ipaddress as text), every link is found.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/core/cluster_spec.h"
#include "google/protobuf/stubs/logging.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "cluster_spec_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

// The address as inet_ntop prints it: a valid address reads back unchanged.
std::string Printed(uint32_t address) {
  in_addr raw{htonl(address)};
  char text[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &raw, text, sizeof(text)) ? text : "";
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace cluster = silk::cluster;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<cluster::ClusterSpec> spec = cluster::ParseSpec(text, "fuzz.textproto");
  if (!spec.ok()) {
    Check(spec.status().message().find("fuzz.textproto") != absl::string_view::npos, "errors name the source");
    return 0;
  }
  Check(spec->regions_size() > 0, "a valid spec has regions");
  for (const cluster::Region& region : spec->regions()) {
    Check(region.nodes_size() > 0, "a valid region has nodes");
    for (const cluster::Node& node : region.nodes()) {
      absl::StatusOr<std::string> found = cluster::RegionOfNode(*spec, node.name());
      Check(found.ok() && *found == region.name(), "each node is found in its own region");
      absl::StatusOr<uint32_t> address = cluster::ParseIpv4(node.address());
      Check(address.ok(), "a node's address parses");
      Check(Printed(*address) == node.address(), "a node's address is exactly a dotted quad");
      Check(node.slots() > 0, "a node has slots");
    }
    if (!region.subnet().empty()) {
      absl::StatusOr<cluster::Ipv4Subnet> subnet = cluster::ParseIpv4Subnet(region.subnet());
      Check(subnet.ok(), "the subnet parses");
      const std::string& text = region.subnet();
      const size_t slash = text.find('/');
      Check(slash != std::string::npos && Printed(subnet->network) == text.substr(0, slash),
            "a subnet's network is exactly a dotted quad");
      const std::string prefix = text.substr(slash + 1);
      Check(!prefix.empty() && prefix.find_first_not_of("0123456789") == std::string::npos,
            "a subnet's prefix length is decimal digits");
    }
    if (!region.gateway().empty()) {
      absl::StatusOr<uint32_t> gateway = cluster::ParseIpv4(region.gateway());
      Check(gateway.ok() && Printed(*gateway) == region.gateway(), "a gateway is exactly a dotted quad");
    }
  }
  for (const cluster::Link& link : spec->links()) {
    Check(cluster::FindLink(*spec, link.region_a(), link.region_b()) == &link, "each link is found");
    Check(cluster::FindLink(*spec, link.region_b(), link.region_a()) == &link, "each link is found reversed");
    uint32_t mtu = cluster::LinkMtu(link);
    Check(mtu >= 576 && mtu <= 65535, "the mtu is sane");
  }
  return 0;
}
