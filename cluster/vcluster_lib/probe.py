"""Measuring the virtual network with silk-netprobe, from inside the node namespaces."""

import json
import select
import subprocess
import time

from .common import VclusterError, in_netns, run, tool


class ProbeServer:
    """A silk-netprobe server in a node's namespace, for the duration of a `with` block."""

    def __init__(self, node, lifetime_s=120):
        self.node = node
        self.lifetime_s = lifetime_s
        self.process = None
        self.port = None

    def __enter__(self):
        self.process = subprocess.Popen(
            in_netns(self.node.netns, [tool("silk-netprobe"), "serve", "--lifetime", f"{self.lifetime_s}s"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], 10)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("ready "):
            self.__exit__()
            raise VclusterError(f"silk-netprobe server on {self.node.name} did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def endpoint(self):
        return f"{self.node.address}:{self.port}"


def client(node, mode, endpoint, *flags, timeout=60):
    """Runs a silk-netprobe client in `node`'s namespace; returns its JSON result."""
    output = run(in_netns(node.netns, [tool("silk-netprobe"), mode, "--to", endpoint, *flags]), timeout=timeout)
    return json.loads(output)


def measure_path(source, target, flows=4, seconds=3.0, rtt_count=20):
    """Round trip and TCP throughput from node `source` to node `target`."""
    with ProbeServer(target) as server:
        rtt = client(source, "rtt", server.endpoint(), "--count", str(rtt_count), "--interval", "20ms")
        time.sleep(0.2)
        throughput = client(source, "throughput", server.endpoint(), "--flows", str(flows),
                            "--seconds", f"{seconds}s", "--skip", f"{min(1.0, seconds / 3)}s",
                            timeout=seconds + 60)
    return {"rtt_ms": rtt["median_ms"], "throughput_bps": throughput["steady_bps"]}
