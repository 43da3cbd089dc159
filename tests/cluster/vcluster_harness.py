"""Helpers for the virtual cluster's fidelity tests: real namespaces, real kernel TCP, the real emulator."""

import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VCLUSTER = os.path.join(REPO, "cluster", "vcluster")
SPECS = os.path.join(REPO, "cluster", "specs")
sys.path.insert(0, os.path.join(REPO, "cluster"))

from vcluster_lib import probe, topology, wanem  # noqa: E402
from vcluster_lib.common import tool  # noqa: E402

SKIP = 77  # CTest SKIP_RETURN_CODE


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)
    print(f"  ok: {message}", flush=True)


def vcluster(*args, timeout=120, check_status=True):
    result = subprocess.run([VCLUSTER, *args], capture_output=True, text=True, timeout=timeout)
    if check_status and result.returncode != 0:
        raise Failure(f"vcluster {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def emulator_stats():
    return json.loads(vcluster("status", "--quick", "--json").stdout)["emulator"]


def direction(stats, source, target):
    for link in stats["links"]:
        if link["from"] == source and link["to"] == target:
            return link
    raise Failure(f"emulator reports no direction {source} -> {target}")


class Cluster:
    """`vcluster up` on entry, `vcluster down` on exit, whatever happens in between."""

    def __init__(self, spec="xinjiang-chongqing"):
        self.spec_path = os.path.join(SPECS, spec + ".textproto")
        self.topology = None

    def __enter__(self):
        vcluster("up", self.spec_path)
        self.topology = topology.load(self.spec_path)
        return self

    def __exit__(self, *exc):
        vcluster("down", check_status=False)

    def node(self, name):
        for node in self.topology.nodes():
            if node.name == name:
                return node
        raise Failure(f"no node {name}")

    def rtt(self, source, target, count=20, timeline=False):
        with probe.ProbeServer(self.node(target)) as server:
            return probe.client(self.node(source), "rtt", server.endpoint(), "--count", str(count),
                                "--interval", "20ms", *(["--timeline"] if timeline else []))

    def throughput(self, source, target, flows, seconds, skip, congestion="cubic"):
        with probe.ProbeServer(self.node(target)) as server:
            return probe.client(self.node(source), "throughput", server.endpoint(), "--flows", str(flows),
                                "--seconds", f"{seconds}s", "--skip", f"{skip}s", "--congestion", congestion,
                                timeout=seconds + 60)


def leftovers():
    """Everything a virtual cluster could leave behind."""
    namespaces = [n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                                       timeout=10).stdout.splitlines() if n.startswith("silk-")]
    processes = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if os.path.basename(command) in ("silk-wanem", "silk-netprobe"):
                processes.append(f"{pid} {command}")
    files = [p for p in ("/run/silk-vcluster",) if os.path.exists(p)]
    if os.path.isdir("/etc/netns"):
        files += [os.path.join("/etc/netns", n) for n in os.listdir("/etc/netns") if n.startswith("silk-")]
    return {"namespaces": namespaces, "processes": processes, "files": files}


def root_links():
    output = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in output.splitlines())


def main(cases):
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print(f"usage: {sys.argv[0]} {{{','.join(cases)}}}", file=sys.stderr)
        return 2
    name = sys.argv[1]
    if os.geteuid() != 0 and name != "not_root":
        print(f"SKIPPED {name}: the virtual cluster needs root (network namespaces, TUN devices)")
        return SKIP
    os.environ.setdefault("SILK_BUILD_DIR", os.path.join(REPO, "build"))
    start = time.monotonic()
    try:
        cases[name]()
    except Failure as failure:
        print(f"FAILED {name}: {failure}", flush=True)
        return 1
    print(f"PASSED {name} in {time.monotonic() - start:.1f}s")
    return 0
