// The cluster spec loader: the shipped specs load, and each validation error is caught and named.
#include "runtime/core/cluster_spec.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace silk::cluster {
namespace {

constexpr char kTwoRegions[] = R"pb(
  name: "test"
  regions {
    name: "xinjiang"
    subnet: "198.18.1.0/24"
    nodes { name: "xj1" address: "198.18.1.1" slots: 2 }
    nodes { name: "xj2" address: "198.18.1.2" slots: 2 }
  }
  regions {
    name: "chongqing"
    subnet: "198.18.2.0/24"
    nodes { name: "cq1" address: "198.18.2.1" slots: 1 }
  }
  links { region_a: "xinjiang" region_b: "chongqing" bandwidth_bps: 1000000000 rtt_ms: 40 mtu: 9000 }
)pb";

// Applies `edit` (a text replacement) to the valid spec and returns the parse result.
absl::StatusOr<ClusterSpec> ParseEdited(const std::string& from, const std::string& to) {
  std::string text = kTwoRegions;
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return ParseSpec(text, "edited.textproto");
}

void ExpectInvalid(const std::string& from, const std::string& to, const std::string& message) {
  auto spec = ParseEdited(from, to);
  ASSERT_FALSE(spec.ok()) << "accepted a spec with " << to;
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find(message), std::string::npos) << spec.status().message();
  EXPECT_NE(spec.status().message().find("edited.textproto"), std::string::npos) << spec.status().message();
}

TEST(SpecTest, ValidSpecParsesAndAnswersQueries) {
  auto spec = ParseSpec(kTwoRegions, "inline");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->regions_size(), 2);
  EXPECT_EQ(*RegionOfNode(*spec, "xj2"), "xinjiang");
  EXPECT_EQ(*RegionOfNode(*spec, "cq1"), "chongqing");
  EXPECT_EQ(RegionOfNode(*spec, "sh1").status().code(), absl::StatusCode::kNotFound);
  const Link* link = FindLink(*spec, "chongqing", "xinjiang");  // either order
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->bandwidth_bps(), 1000000000u);
  EXPECT_DOUBLE_EQ(link->rtt_ms(), 40);
  EXPECT_EQ(LinkMtu(*link), 9000u);
  EXPECT_EQ(FindLink(*spec, "xinjiang", "shanghai"), nullptr);
}

TEST(SpecTest, ShippedSpecsLoad) {
  for (const char* name : {"xinjiang-chongqing", "three-regions", "unequal-regions", "bench-unshaped"}) {
    std::string path = std::string(SILK_SOURCE_DIR) + "/cluster/specs/" + name + ".textproto";
    auto spec = LoadSpec(path);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_GE(spec->regions_size(), 2) << path;
    EXPECT_GE(spec->links_size(), 1) << path;
  }
  // The demo's reference: the default cluster's node shape in one region.
  auto one_region = LoadSpec(std::string(SILK_SOURCE_DIR) + "/cluster/specs/xinjiang-only.textproto");
  ASSERT_TRUE(one_region.ok()) << one_region.status();
  ASSERT_EQ(one_region->regions_size(), 1);
  EXPECT_EQ(one_region->regions(0).nodes_size(), 4);
  EXPECT_EQ(*RegionOfNode(*one_region, "xj4"), "xinjiang");
  auto spec = LoadSpec(std::string(SILK_SOURCE_DIR) + "/cluster/specs/xinjiang-chongqing.textproto");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(*RegionOfNode(*spec, "cq2"), "chongqing");
  EXPECT_DOUBLE_EQ(FindLink(*spec, "xinjiang", "chongqing")->rtt_ms(), 40);
}

TEST(SpecTest, MissingFileNamesThePath) {
  auto spec = LoadSpec("/nonexistent/cluster.textproto");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("/nonexistent/cluster.textproto"), std::string::npos);
}

TEST(SpecTest, SyntaxErrorNamesTheLine) {
  auto spec = ParseSpec("regions { name: \"a\"\n  nodez { } }", "broken.textproto");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("broken.textproto"), std::string::npos);
  EXPECT_NE(spec.status().message().find("line 2"), std::string::npos) << spec.status().message();
}

TEST(SpecTest, GarbageInputIsAnError) {
  EXPECT_FALSE(ParseSpec(std::string("\x00\xff\xfe{{{", 6), "garbage").ok());
  EXPECT_FALSE(ParseSpec("", "empty").ok());  // no regions
}

TEST(SpecTest, RejectsDuplicateNodeName) {
  ExpectInvalid("name: \"cq1\"", "name: \"xj1\"", "node name \"xj1\" is used twice");
}

TEST(SpecTest, RejectsDuplicateAddress) {
  ExpectInvalid("subnet: \"198.18.2.0/24\"\n    nodes { name: \"cq1\" address: \"198.18.2.1\"",
                "nodes { name: \"cq1\" address: \"198.18.1.2\"", "address 198.18.1.2 is used by both");
}

TEST(SpecTest, RejectsBadAddress) { ExpectInvalid("198.18.2.1\"", "198.18.2.300\"", "is not an IPv4 address"); }

TEST(SpecTest, RejectsNodeOutsideSubnet) {
  ExpectInvalid("address: \"198.18.2.1\"", "address: \"198.18.3.1\"", "outside region \"chongqing\" subnet");
}

TEST(SpecTest, RejectsOverlappingSubnets) {
  ExpectInvalid("subnet: \"198.18.2.0/24\"", "subnet: \"198.18.0.0/16\"", "overlap");
}

TEST(SpecTest, RejectsSubnetWithHostBits) {
  ExpectInvalid("subnet: \"198.18.2.0/24\"", "subnet: \"198.18.2.1/24\"", "host bits");
}

TEST(SpecTest, RejectsZeroSlots) { ExpectInvalid("slots: 1", "slots: 0", "node \"cq1\" has no slots"); }

TEST(SpecTest, RejectsDuplicateRegion) {
  ExpectInvalid("name: \"chongqing\"\n    subnet: \"198.18.2.0/24\"", "name: \"xinjiang\"\n    subnet: \"198.18.2.0/24\"",
                "region \"xinjiang\" is defined twice");
}

TEST(SpecTest, RejectsLinkToUnknownRegion) {
  ExpectInvalid("region_b: \"chongqing\"", "region_b: \"shanghai\"", "region \"shanghai\" is not defined");
}

TEST(SpecTest, RejectsLinkToItself) {
  ExpectInvalid("region_b: \"chongqing\"", "region_b: \"xinjiang\"", "joins a region to itself");
}

TEST(SpecTest, RejectsDuplicateLink) {
  ExpectInvalid("links {", "links { region_a: \"chongqing\" region_b: \"xinjiang\" bandwidth_bps: 1 }\n  links {",
                "is defined twice");
}

TEST(SpecTest, RejectsZeroBandwidth) {
  ExpectInvalid("bandwidth_bps: 1000000000", "bandwidth_bps: 0", "bandwidth_bps must be positive");
}

TEST(SpecTest, RejectsNegativeRtt) { ExpectInvalid("rtt_ms: 40", "rtt_ms: -1", "rtt_ms -1 must be zero or positive"); }

TEST(SpecTest, RejectsLossOutsideFraction) {
  ExpectInvalid("rtt_ms: 40", "rtt_ms: 40 loss: 1.5", "loss 1.5 must be a fraction in [0, 1)");
}

TEST(SpecTest, RejectsNegativeJitter) {
  ExpectInvalid("rtt_ms: 40", "rtt_ms: 40 jitter_ms: -2", "jitter_ms -2 must be zero or positive");
}

TEST(SpecTest, RejectsImpossibleMtu) { ExpectInvalid("mtu: 9000", "mtu: 70000", "mtu 70000 must be in"); }

TEST(SpecTest, RejectsRegionWithoutNodes) {
  ExpectInvalid("links {", "regions { name: \"shanghai\" }\n  links {", "region \"shanghai\" has no nodes");
}

TEST(SpecTest, RejectsGatewayOutsideSubnet) {
  ExpectInvalid("subnet: \"198.18.2.0/24\"", "subnet: \"198.18.2.0/24\" gateway: \"198.18.9.254\"",
                "gateway \"198.18.9.254\" is not an address in subnet");
}

TEST(SpecTest, ParsesSubnetsAndAddresses) {
  auto subnet = ParseIpv4Subnet("198.18.0.0/15");
  ASSERT_TRUE(subnet.ok());
  EXPECT_TRUE(subnet->Contains(*ParseIpv4("198.19.255.1")));
  EXPECT_FALSE(subnet->Contains(*ParseIpv4("198.20.0.1")));
  EXPECT_FALSE(ParseIpv4Subnet("198.18.0.0").ok());
  EXPECT_FALSE(ParseIpv4Subnet("198.18.0.0/33").ok());
  EXPECT_FALSE(ParseIpv4Subnet("198.18.0.0/x").ok());
  EXPECT_TRUE(ParseIpv4Subnet("0.0.0.0/0").ok());
}

// Found by tests/fuzz/cluster_spec_fuzz.cc: "198.18.2.0/24 " was a valid subnet
// here (SimpleAtoi skips spaces and takes a sign) but not to the virtual cluster.
TEST(SpecTest, RejectsSubnetPrefixThatIsNotJustDigits) {
  for (const char* subnet : {"198.18.2.0/24 ", "198.18.2.0/ 24", "198.18.2.0/+24", "198.18.2.0/", "198.18.2.0/-0"}) {
    absl::StatusOr<Ipv4Subnet> parsed = ParseIpv4Subnet(subnet);
    ASSERT_FALSE(parsed.ok()) << subnet;
    EXPECT_NE(parsed.status().message().find("decimal digits"), std::string::npos) << parsed.status().message();
  }
  ExpectInvalid("subnet: \"198.18.2.0/24\"", "subnet: \"198.18.2.0/24 \"", "prefix length must be 0 to 32");
}

// Found by tests/fuzz/cluster_spec_fuzz.cc: inet_pton stopped at a NUL, so
// "198.18.2.0\0/24" (an escape in the text format) was a valid subnet, and an
// address or gateway could carry anything after a NUL.
TEST(SpecTest, RejectsANulByteInsideAnAddressOrSubnet) {
  EXPECT_FALSE(ParseIpv4(std::string_view("198.18.2.1\0x", 12)).ok());
  EXPECT_FALSE(ParseIpv4Subnet(std::string_view("198.18.2.0\0/24", 14)).ok());
  ExpectInvalid("address: \"198.18.2.1\"", "address: \"198.18.2.1\\000; reboot\"",
                "\"198.18.2.1\\000; reboot\" is not an IPv4 address (it holds a NUL byte)");
  ExpectInvalid("subnet: \"198.18.2.0/24\"", "subnet: \"198.18.2.0\\000/24\"", "it holds a NUL byte");
}

}  // namespace
}  // namespace silk::cluster
