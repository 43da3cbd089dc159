"""What a link can carry, and how much of it Silk and OpenMPI get: iperf3
with several flows in both directions at once between a node of each region
(the practical ceiling), then large all-reduces on 8 ranks, per link profile
(profiles.py). Used by cluster/bench-wan; needs a cluster that is up."""

import json
import os
import subprocess
import tempfile
import time

from . import profiles
from .common import REPO, build_dir, in_netns

VCLUSTER = os.path.join(REPO, "cluster", "vcluster")


def capacity(topology, seconds=6, flows=4):
    """iperf3 --bidir with `flows` flows from the first node of the first region to the first node of the
    second: bits per second each way (forward = first region to second)."""
    a, b = topology.regions[0].nodes[0], topology.regions[1].nodes[0]
    server = subprocess.Popen(in_netns(b.netns, ["iperf3", "-s", "-1", "-B", b.address]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run(in_netns(a.netns, ["iperf3", "-c", b.address, "--bidir", "-P", str(flows), "-t",
                                                str(seconds), "-O", "2", "-J"]),
                             capture_output=True, text=True, timeout=seconds + 60)
    finally:
        server.kill()
        server.wait()
    try:
        end = json.loads(out.stdout)["end"]
        return end["sum_received"]["bits_per_second"], end["sum_received_bidir_reverse"]["bits_per_second"]
    except (ValueError, KeyError):
        raise RuntimeError(f"iperf3 failed: {out.stdout[-400:]} {out.stderr[-400:]}")


def allreduce(impl, sizes, ranks=8, iters=3, extra=()):
    """allreduce_perf rows (out-of-place) for `impl` at `sizes` on the cluster: {bytes: row}."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", dir="/tmp", delete=False) as f:
        path = f.name
    perf = os.path.join(build_dir(), "examples", "allreduce_perf")
    rows = {}
    try:
        for size in sizes:
            subprocess.run([VCLUSTER, "run", "--timeout", "600", "--", "-np", str(ranks), perf, "--impl", impl,
                            "-b", str(size), "-e", str(size), "-n", str(iters), "-w", "1", "-c", "0", "--json", path]
                           + list(extra), capture_output=True, text=True)
            for line in open(path):
                line = line.strip().rstrip(",")
                if line and line not in "[]":
                    row = json.loads(line)
                    if not row.get("in_place"):
                        rows[row["bytes"]] = row
    finally:
        os.unlink(path)
    return rows


def profile_table(topology, names, sizes=(64 << 20, 256 << 20), extra=()):
    """Per profile and size: iperf3's capacity each way, Silk's and OpenMPI's rate each way (S*8/t: an all-reduce
    moves S bytes each way across the WAN), Silk over iperf3's slower direction, Silk over OpenMPI. Prints as it goes."""
    a, b = topology.regions[0].name, topology.regions[1].name
    print("%-11s %10s %10s %8s %10s %10s %10s %9s %9s" % ("profile", "iperf3 ->", "iperf3 <-", "MiB", "bound ms",
          "silk ms", "mpi ms", "silk/ip3", "silk/mpi"), flush=True)
    results = []
    for name in names:
        profiles.apply(topology, name, a, b)
        forward, back = capacity(topology)
        silk = allreduce("silk", sizes, extra=extra)
        mpi = allreduce("mpi", sizes)
        for size in sizes:
            s, m = silk.get(size, {}), mpi.get(size, {})
            silk_bps = size * 8 / (s["time_us"] / 1e6) if s.get("time_us") else None
            mpi_bps = size * 8 / (m["time_us"] / 1e6) if m.get("time_us") else None
            ceiling = min(forward, back)
            row = {"profile": name, "bytes": size, "iperf3_forward_bps": forward, "iperf3_back_bps": back,
                   "bound_us": s.get("bound_us"), "silk_us": s.get("time_us"), "mpi_us": m.get("time_us"),
                   "silk_bps": silk_bps, "mpi_bps": mpi_bps,
                   "silk_over_iperf3": silk_bps / ceiling if silk_bps else None,
                   "silk_over_mpi": silk_bps / mpi_bps if silk_bps and mpi_bps else None}
            results.append(row)

            def f(x, scale=1.0, fmt="%.0f"):
                return "-" if x is None else fmt % (x * scale)
            print("%-11s %10s %10s %8d %10s %10s %10s %9s %9s" % (
                name, f(forward, 1e-6, "%.0fM"), f(back, 1e-6, "%.0fM"), size >> 20, f(row["bound_us"], 1e-3),
                f(row["silk_us"], 1e-3), f(row["mpi_us"], 1e-3), f(row["silk_over_iperf3"], 1, "%.2f"),
                f(row["silk_over_mpi"], 1, "%.2f")), flush=True)
    profiles.apply(topology, "spec", a, b)
    return results
