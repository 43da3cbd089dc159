"""What the virtual cluster is made of, derived from a cluster spec.

Node N of region R lives in network namespace silk-N, with interface eth0 on
the region's subnet. Region R's gateway namespace silk-gw-R holds the region's
switch (bridge br0, with the gateway address) and the TUN device wan0 that
silk-wanem reads and writes; it routes the other regions' subnets into wan0.
"""

import ipaddress
import json
import os
import subprocess
from dataclasses import dataclass, field

from .common import VclusterError, tool

NODE_PREFIX = "silk-"
GATEWAY_PREFIX = "silk-gw-"
NODE_IFNAME = "eth0"
BRIDGE = "br0"
TUN = "wan0"
MIN_LAN_MTU = 9000


@dataclass
class Node:
    name: str
    address: str
    slots: int
    region: str
    netns: str = ""


@dataclass
class Region:
    name: str
    subnet: ipaddress.IPv4Network
    gateway: str
    nodes: list = field(default_factory=list)
    netns: str = ""


@dataclass
class Link:
    a: str
    b: str
    rate_bps: int
    rtt_ms: float
    loss: float
    jitter_ms: float
    mtu: int


@dataclass
class Topology:
    name: str
    spec_path: str
    regions: list
    links: list

    def nodes(self):
        return [node for region in self.regions for node in region.nodes]

    def region(self, name):
        for region in self.regions:
            if region.name == name:
                return region
        raise VclusterError(f"region {name!r} is not in spec {self.spec_path} "
                            f"(regions: {', '.join(r.name for r in self.regions)})")

    def link(self, a, b):
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        raise VclusterError(f"spec {self.spec_path} has no link between regions {a!r} and {b!r}")

    def links_of(self, region):
        return [link for link in self.links if region in (link.a, link.b)]

    def lan_mtu(self):
        return max([MIN_LAN_MTU] + [link.mtu for link in self.links])

    def namespaces(self):
        return [region.netns for region in self.regions] + [node.netns for node in self.nodes()]


def load(spec_path):
    """Reads a spec through silk-spec (which validates it) and checks what the virtual cluster needs."""
    spec_path = os.path.abspath(spec_path)
    if not os.path.exists(spec_path):
        raise VclusterError(f"cluster spec {spec_path} does not exist")
    result = subprocess.run([tool("silk-spec"), spec_path], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise VclusterError(result.stderr.strip() or f"silk-spec failed on {spec_path} (exit {result.returncode})")
    spec = json.loads(result.stdout)
    regions = []
    for entry in spec["regions"]:
        if not entry["subnet"]:
            raise VclusterError(f"spec {spec_path}: region {entry['name']!r} needs a subnet for the virtual cluster")
        subnet = ipaddress.IPv4Network(entry["subnet"])
        if subnet.num_addresses < 4:
            raise VclusterError(f"spec {spec_path}: subnet {subnet} of region {entry['name']!r} is too small")
        gateway = entry["gateway"] or str(subnet.broadcast_address - 1)
        region = Region(entry["name"], subnet, gateway, netns=GATEWAY_PREFIX + entry["name"])
        for node in entry["nodes"]:
            if node["address"] == gateway:
                raise VclusterError(f"spec {spec_path}: node {node['name']!r} uses gateway address {gateway} "
                                    f"of region {region.name!r}; set the region's gateway field")
            region.nodes.append(Node(node["name"], node["address"], int(node["slots"]), region.name,
                                     netns=NODE_PREFIX + node["name"]))
        regions.append(region)
    links = [Link(entry["region_a"], entry["region_b"], int(entry["bandwidth_bps"]), float(entry["rtt_ms"]),
                  float(entry["loss"]), float(entry["jitter_ms"]), int(entry["mtu"]) or 1500)
             for entry in spec["links"]]
    topology = Topology(spec["name"] or os.path.basename(spec_path), spec_path, regions, links)
    names = set()
    for namespace in topology.namespaces():
        if namespace in names:
            raise VclusterError(f"spec {spec_path}: namespace name {namespace} would be used twice "
                                "(a node is named like a region's gateway)")
        names.add(namespace)
    return topology
