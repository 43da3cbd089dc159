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


def finite_times(topology, size, flows, reps, pace_bytes_per_s=0, port=5299):
    """finite_transfer.py from the first node of the first region to the first node of the second: each
    repetition's time in ms (the first, which opens the flows' windows, is left out)."""
    a, b = topology.regions[0].nodes[0], topology.regions[1].nodes[0]
    script = os.path.join(REPO, "cluster", "vcluster_lib", "finite_transfer.py")
    server = subprocess.Popen(in_netns(b.netns, ["python3", script, "serve", b.address, str(port)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run(in_netns(a.netns, ["python3", script, "send", b.address, str(port), str(flows), str(size),
                                                str(reps + 1), str(int(pace_bytes_per_s))]),
                             capture_output=True, text=True, timeout=600)
    finally:
        server.kill()
        server.wait()
    times = [float(x) for x in out.stdout.split()]
    if len(times) != reps + 1:
        raise RuntimeError(f"finite transfer failed: {out.stdout[-400:]} {out.stderr[-400:]}")
    return times[1:]


def finite_table(topology, names, sizes=(64 << 20, 256 << 20), flows=12, reps=7):
    """Per profile and size: finite transfers of the size over `flows` flows paced together at the link's declared
    rate (as Silk's lanes are), median and mean ms, and the median over the `spec` profile's (when it ran first).
    Prints as it goes."""
    a, b = topology.regions[0].name, topology.regions[1].name
    pace = topology.link(a, b).rate_bps / 8
    print("%-11s %8s %10s %10s %9s  %s" % ("profile", "MiB", "median ms", "mean ms", "vs spec", "ms each"), flush=True)
    base, rows = {}, []
    for name in names:
        profiles.apply(topology, name, a, b)
        for size in sizes:
            times = finite_times(topology, size, flows, reps, pace)
            median, mean = sorted(times)[len(times) // 2], sum(times) / len(times)
            base.setdefault(size, median if name == "spec" else None)
            ratio = median / base[size] if base[size] else None
            rows.append({"profile": name, "bytes": size, "times_ms": times, "median_ms": median, "mean_ms": mean})
            print("%-11s %8d %10.0f %10.0f %9s  %s" % (name, size >> 20, median, mean,
                  "-" if ratio is None else "%.3f" % ratio, " ".join("%.0f" % t for t in times)), flush=True)
    profiles.apply(topology, "spec", a, b)
    return rows
