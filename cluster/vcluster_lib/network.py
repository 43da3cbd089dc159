"""Creating and removing the virtual cluster's namespaces, links, bridges and TUN devices.

Every namespace `up` creates is recorded in the state file before it exists, so
`down` can remove all of it after a crash or Ctrl-C at any point.
"""

import os
import shutil
import signal
import time

from . import wanem
from .common import NETNS_ETC, STATE_DIR, VclusterError, in_netns, log, read_state, run, write_state
from .topology import BRIDGE, GATEWAY_PREFIX, NODE_IFNAME, TUN

# Sysctls of every node: room for one TCP flow to fill a long fat pipe (the
# bandwidth-delay product of 1 Gbit/s x 80 ms is 10 MB), and no remembered
# ssthresh from earlier connections, so that each measurement starts fresh.
NODE_SYSCTLS = {
    "net.ipv4.tcp_rmem": "4096 131072 67108864",
    "net.ipv4.tcp_wmem": "4096 65536 67108864",
    "net.ipv4.tcp_no_metrics_save": "1",
    # Collectives are bursts separated by compute: a WAN connection idle for one
    # RTO must not fall back to slow start (six round trips at 40 ms to reopen
    # a 5 MB window). Real deployments should set this too (cluster/README.md).
    "net.ipv4.tcp_slow_start_after_idle": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
GATEWAY_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}


def ip(*args, namespace=None):
    return run(["ip"] + (["-n", namespace] if namespace else []) + list(args))


def set_sysctls(namespace, values):
    script = "; ".join(f"echo '{value}' > /proc/sys/{key.replace('.', '/')}" for key, value in values.items())
    run(in_netns(namespace, ["sh", "-ec", script]))


def existing_namespaces():
    names = []
    for line in run(["ip", "netns", "list"]).splitlines():
        if line.strip():
            names.append(line.split()[0])
    return names


def up(topology):
    write_state({"spec": topology.spec_path, "namespaces": topology.namespaces(),
                 "etc_netns": [node.netns for node in topology.nodes()], "wanem_pid": None,
                 "started": time.time()})
    for region in topology.regions:
        create_gateway(topology, region)
        for index, node in enumerate(region.nodes):
            create_node(topology, region, node, f"port{index}")
    write_hosts_files(topology)
    state = read_state()
    state["wanem_pid"] = wanem.start(topology)
    write_state(state)
    # Only now that the emulator holds the TUNs: route the other regions into them.
    for region in topology.regions:
        ip("link", "set", TUN, "up", namespace=region.netns)
        for other in linked_regions(topology, region):
            ip("route", "add", str(other.subnet), "dev", TUN, namespace=region.netns)


def linked_regions(topology, region):
    """The regions `region` has a WAN link to."""
    return [topology.region(link.b if link.a == region.name else link.a) for link in topology.links_of(region.name)]


def create_gateway(topology, region):
    """The region's switch (bridge br0 with the gateway address) and its TUN to the emulator."""
    gw = region.netns
    ip("netns", "add", gw)
    ip("link", "set", "lo", "up", namespace=gw)
    set_sysctls(gw, GATEWAY_SYSCTLS)
    ip("link", "add", BRIDGE, "mtu", str(topology.lan_mtu()), "type", "bridge", namespace=gw)
    ip("addr", "add", f"{region.gateway}/{region.subnet.prefixlen}", "dev", BRIDGE, namespace=gw)
    ip("link", "set", BRIDGE, "up", namespace=gw)
    wan_mtu = max([link.mtu for link in topology.links_of(region.name)] + [576])
    ip("tuntap", "add", "dev", TUN, "mode", "tun", namespace=gw)
    ip("link", "set", TUN, "mtu", str(wan_mtu), "txqueuelen", "1000", namespace=gw)


def create_node(topology, region, node, port):
    """A node namespace with eth0 on the region's bridge and routes to the other regions via the gateway."""
    lan_mtu = str(topology.lan_mtu())
    ip("netns", "add", node.netns)
    ip("link", "set", "lo", "up", namespace=node.netns)
    set_sysctls(node.netns, NODE_SYSCTLS)
    ip("link", "add", NODE_IFNAME, "netns", node.netns, "mtu", lan_mtu, "type", "veth",
       "peer", "name", port, "netns", region.netns, "mtu", lan_mtu)
    ip("link", "set", port, "master", BRIDGE, "up", namespace=region.netns)
    ip("addr", "add", f"{node.address}/{region.subnet.prefixlen}", "dev", NODE_IFNAME, namespace=node.netns)
    ip("link", "set", NODE_IFNAME, "up", namespace=node.netns)
    for link in topology.links_of(region.name):
        other = topology.region(link.b if link.a == region.name else link.a)
        # The link's MTU on the route makes TCP pick a segment size that crosses the WAN.
        ip("route", "add", str(other.subnet), "via", region.gateway, "mtu", str(link.mtu), namespace=node.netns)


def write_hosts_files(topology):
    lines = ["127.0.0.1 localhost"] + [f"{node.address} {node.name}" for node in topology.nodes()]
    for node in topology.nodes():
        directory = os.path.join(NETNS_ETC, node.netns)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "hosts"), "w") as f:
            f.write("\n".join(lines) + "\n")


def kill_namespace_processes(namespace):
    """Ends whatever still runs in a namespace (MPI ranks, probes), or it would outlive `ip netns del`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in run(["ip", "netns", "pids", namespace], check=False).split() if p.isdigit()]
        pids = [p for p in pids if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.05)


def down(quiet=False):
    """Removes everything a virtual cluster made; safe to run twice or after a crash."""
    state = read_state()
    emulators = wanem.find_emulators()
    if state is None and not emulators and not any(n.startswith(GATEWAY_PREFIX) for n in existing_namespaces()):
        if not quiet:
            log("no virtual cluster is up")
        return
    state = state or {}
    for pid in set(emulators + [state.get("wanem_pid")]):
        wanem.stop(pid)
    existing = existing_namespaces()
    namespaces = [n for n in state.get("namespaces", []) if n in existing]
    namespaces += [n for n in existing if n.startswith(GATEWAY_PREFIX) and n not in namespaces]
    for namespace in namespaces:
        kill_namespace_processes(namespace)
        run(["ip", "netns", "del", namespace], check=False)
    for namespace in state.get("etc_netns", []):
        shutil.rmtree(os.path.join(NETNS_ETC, namespace), ignore_errors=True)
    if os.path.isdir(NETNS_ETC) and not os.listdir(NETNS_ETC):
        os.rmdir(NETNS_ETC)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    left = [n for n in existing_namespaces() if n in namespaces]
    if left:
        raise VclusterError(f"could not remove network namespaces: {', '.join(left)}")
    if not quiet:
        log(f"removed {len(namespaces)} network namespaces")
