#!/usr/bin/python3
"""Fidelity tests of the virtual two-region cluster; run one case: vcluster_test.py CASE (as root).

Each case brings a virtual cluster up and down itself and measures it with
real kernel TCP/UDP between network namespaces, through the real emulator.
"""

import collections
import json
import math
import os
import signal
import subprocess
import sys
import time

from vcluster_harness import (SPECS, VCLUSTER, Cluster, check, direction, emulator_stats, leftovers, main, probe,
                              root_links, tool, vcluster, wanem)

WAN = ("xinjiang", "chongqing")


def within_rtt(measured_ms, expected_ms):
    return abs(measured_ms - expected_ms) <= 0.10 * expected_ms + 1.0


def test_rtt():
    """Round trip across the WAN matches the spec, and live changes, within 10% + 1 ms."""
    with Cluster() as cluster:
        measured = cluster.rtt("xj1", "cq1")["median_ms"]
        check(within_rtt(measured, 40), f"spec rtt 40 ms: measured {measured:.2f} ms xj1 -> cq1")
        measured = cluster.rtt("cq2", "xj2")["median_ms"]
        check(within_rtt(measured, 40), f"spec rtt 40 ms: measured {measured:.2f} ms cq2 -> xj2")
        for rtt in (20, 80):
            vcluster("link", *WAN, "--rtt", f"{rtt}ms")
            measured = cluster.rtt("xj1", "cq1")["median_ms"]
            check(within_rtt(measured, rtt), f"vcluster link --rtt {rtt}ms: measured {measured:.2f} ms")
        vcluster("link", *WAN, "--rtt", "40ms", "--jitter", "5ms")  # each way: 20 +- 5 ms, so 30 to 50 ms
        # Percentiles are robust to a stray descheduling. A loaded host (ctest runs two tests at once) only
        # ever adds delay, so the floor and the spread are checked on the first try, and the ceiling may
        # take up to three: jitter set too wide breaks it on every try, the load on one (a CI run saw a
        # 90th percentile of 53.2 ms once, with a compile beside it).
        for attempt in range(1, 4):
            samples = sorted(rtt for _, rtt in cluster.rtt("xj1", "cq1", count=40, timeline=True)["timeline"])
            low, high = samples[len(samples) // 10], samples[len(samples) * 9 // 10]
            measured = f"--jitter 5ms, try {attempt}: round trips from {low:.2f} to {high:.2f} ms (10th to 90th " \
                       "percentile)"
            if attempt == 1:
                check(29 <= low and high - low > 2, f"{measured}: floor >= 29 ms, spread > 2 ms")
            if high <= 52:
                break
            print(f"  retry: {measured}: ceiling above 52 ms")
        check(high <= 52, f"{measured}: ceiling <= 52 ms")


def carried_each_second(seconds=4, ramp=3):
    """What the emulator delivered from xinjiang to chongqing (bits per second, on its own clock) in each of
    `seconds` successive seconds, after `ramp` seconds for the flows to ramp up."""
    time.sleep(ramp)
    samples = []
    for _ in range(seconds + 1):
        stats = wanem.stats()
        samples.append((stats["now_ns"] / 1e9, direction(stats, *WAN)["delivered_bytes"]))
        time.sleep(1)
    return [(b1 - b0) * 8 / (t1 - t0) for (t0, b0), (t1, b1) in zip(samples, samples[1:])]


def test_throughput():
    """A long TCP transfer fills >= 90% of the link and never runs more than 5% above it."""
    rate = 500e6
    with Cluster() as cluster:
        vcluster("link", *WAN, "--rate", "500mbit")  # 40 ms: BDP 2.5 MB, well inside the TCP windows
        with probe.ProbeServer(cluster.node("cq1")) as server:
            sender = subprocess.Popen(
                ["ip", "netns", "exec", "silk-xj1", tool("silk-netprobe"), "throughput", "--to", server.endpoint(),
                 "--flows", "2", "--seconds", "8s", "--skip", "3s", "--congestion", "cubic"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            carried = carried_each_second()
            output, errors = sender.communicate(timeout=60)
        check(sender.returncode == 0, f"the transfer finished ({errors.strip()})")
        result = json.loads(output)
        steady, peak = result["steady_bps"], result["peak_500ms_bps"]
        check(steady >= 0.90 * rate, f"steady TCP goodput {steady / 1e6:.1f} Mbit/s >= 90% of 500 Mbit/s")
        check(steady <= 1.05 * rate, f"steady TCP goodput {steady / 1e6:.1f} Mbit/s <= 105% of 500 Mbit/s")
        # Not asserted: after a loss, the receiver gets a whole repaired window at once, so
        # short windows at the receiver can exceed the link rate although the wire never does.
        print(f"  info: busiest 500 ms at the receiver {peak / 1e6:.1f} Mbit/s")
        check(max(carried) <= 1.05 * rate and min(carried) >= 0.90 * rate,
              f"the emulator carried {', '.join(f'{c / 1e6:.0f}' for c in carried)} Mbit/s in successive seconds")
        # While a link streams, silk-wanem delivers in batches at most 1 ms apart
        # (--delivery-batch-us): a packet waits for its batch, less than 1 ms on average.
        late = direction(wanem.stats(), *WAN)["mean_late_us"]
        check(late < 1000, f"packets were delivered {late:.0f} us late on average (batches at most 1 ms apart)")


def test_loss():
    """Configured random loss is observed within statistical tolerance (4 sigma)."""
    loss, count = 0.01, 20000
    with Cluster() as cluster:
        vcluster("link", *WAN, "--loss", "1%")
        before = direction(emulator_stats(), *WAN)
        with probe.ProbeServer(cluster.node("cq1")) as server:
            result = probe.client(cluster.node("xj1"), "udp", server.endpoint(), "--count", str(count),
                                  "--rate", "10000", "--size", "1000")
        after = direction(emulator_stats(), *WAN)
        lost = result["sent"] - result["received"]
        sigma = math.sqrt(count * loss * (1 - loss))
        check(result["sent"] == count, f"sent all {count} datagrams")
        check(abs(lost - count * loss) <= 4 * sigma,
              f"lost {lost} of {count} datagrams; expected {count * loss:.0f} +- {4 * sigma:.0f}")
        dropped = after["dropped_loss"] - before["dropped_loss"]
        check(abs(dropped - lost) <= 2, f"the emulator's loss counter ({dropped}) accounts for the loss ({lost})")


def test_policer():
    """A policer carries the rate and no more, and drops rather than queues what is above it."""
    rate = 500e6
    with Cluster() as cluster:
        vcluster("link", *WAN, "--rate", "500mbit", "--policer", "250000")
        with probe.ProbeServer(cluster.node("cq1")) as server:
            sender = subprocess.Popen(
                ["ip", "netns", "exec", "silk-xj1", tool("silk-netprobe"), "throughput", "--to", server.endpoint(),
                 "--flows", "4", "--seconds", "8s", "--skip", "3s", "--congestion", "bbr"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            carried = carried_each_second()
            output, errors = sender.communicate(timeout=60)
        check(sender.returncode == 0, f"the transfer finished ({errors.strip()})")
        check(max(carried) <= 1.05 * rate, f"the policer carried {', '.join(f'{c / 1e6:.0f}' for c in carried)} "
              "Mbit/s in successive seconds: never above the rate")
        link = direction(wanem.stats(), *WAN)
        check(link["dropped_policed"] > 0 and link["backlog_bytes"] == 0,
              f"it dropped {link['dropped_policed']} packets over the rate and queued none")


def test_profiles():
    """Every named link profile applies as described, and a checked all-reduce loop runs exact through it."""
    from vcluster_lib import faults, profiles
    with Cluster():
        for name in profiles.NAMES:
            vcluster("link", *WAN, "--profile", name)
            stats = wanem.stats()
            forward, back = direction(stats, *WAN), direction(stats, *reversed(WAN))
            qdisc = subprocess.run(["ip", "netns", "exec", "silk-gw-xinjiang", "tc", "qdisc", "show", "dev", "wan0"],
                                   capture_output=True, text=True).stdout
            expected = {
                "spec": forward["rate_bps"] == 1e9 and forward["loss"] == 0 and "tbf" not in qdisc,
                "shallow": forward["queue_limit_bytes"] == 5000000 // 4,
                "deep": forward["queue_limit_bytes"] == 5000000 * 4,
                "policer": forward["policer_burst_bytes"] == 500000 and back["policer_burst_bytes"] == 500000,
                "loss-0.01": forward["loss"] == 0.0001,
                "loss-1": forward["loss"] == 0.01 and back["loss"] == 0.01,
                "jitter": forward["jitter_ms"] == 2,
                "asymmetric": forward["rate_bps"] == 1e9 and back["rate_bps"] == 5e8,
                "kernel": forward["rate_bps"] == 0 and "tbf" in qdisc,
            }[name]
            check(expected, f"profile {name} in force ({profiles.describe(name)})")
            run = faults.loop(iters=5, size=1 << 20, timeout=120)
            check(run.returncode == 0 and run.wrong == 0, f"5 all-reduces through {name}: exact "
                  f"(exit {run.returncode}, {run.wrong} wrong)")


def test_finite():
    """bench-wan --finite's transfers: each held to the pace (no faster than S / pace) and, on the spec's link,
    taking no more than twice that plus the round trip; one per repetition asked for."""
    from vcluster_lib import bench_links
    size, pace, reps = 16 << 20, 125e6, 3
    with Cluster() as cluster:
        times = bench_links.finite_times(cluster.topology, size, flows=12, reps=reps, pace_bytes_per_s=pace)
    floor = size / pace * 1e3
    check(len(times) == reps and all(floor <= t <= 2 * floor + 2 * 40 for t in times),
          f"{reps} transfers of 16 MiB paced at 1 Gbit/s: {', '.join(f'{t:.0f}' for t in times)} ms "
          f"(at least {floor:.0f})")


def test_cut_heal():
    """`cut` stalls WAN traffic on an open connection; `heal` lets it resume; the LAN is unaffected."""
    with Cluster() as cluster:
        with probe.ProbeServer(cluster.node("cq1")) as server:
            pinger = subprocess.Popen(
                ["ip", "netns", "exec", "silk-xj1", tool("silk-netprobe"), "rtt", "--to", server.endpoint(),
                 "--duration", "8s", "--interval", "20ms", "--timeout", "30s", "--timeline"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(2)
            vcluster("cut", *WAN)
            cut_ms = time.monotonic() * 1000  # the cut is in force once the command returns
            time.sleep(0.5)
            lan = cluster.rtt("xj1", "xj2", count=5)["median_ms"]
            check(lan < 1.0, f"while cut, the LAN still answers (xj1 -> xj2 rtt {lan:.2f} ms)")
            during = direction(emulator_stats(), *WAN)
            time.sleep(2)
            check(direction(emulator_stats(), *WAN)["delivered_packets"] == during["delivered_packets"],
                  "while cut, the emulator delivers nothing xinjiang -> chongqing")
            heal_ms = time.monotonic() * 1000
            vcluster("heal", *WAN)
            output, errors = pinger.communicate(timeout=60)
        check(pinger.returncode == 0, f"the connection survived the cut (exit {pinger.returncode} {errors.strip()})")
        result = json.loads(output)
        completions = [result["start_ms"] + sent + rtt for sent, rtt in result["timeline"]]
        check(len([t for t in completions if t < cut_ms]) >= 10, "round trips completed before the cut")
        stalled = [t for t in completions if cut_ms + 50 < t < heal_ms]  # 50 ms: the pinger may wake late
        check(not stalled, f"no round trip completed between cut and heal ({len(stalled)} did)")
        resumed = [t for t in completions if t > heal_ms]
        check(len(resumed) >= 10, f"{len(resumed)} round trips completed after heal")
        check(resumed and resumed[0] - heal_ms < 5000, f"traffic resumed {resumed[0] - heal_ms:.0f} ms after heal")
        check(direction(emulator_stats(), *WAN)["dropped_cut"] > 0, "the emulator counted packets dropped by the cut")


def test_intra_region():
    """Traffic inside a region is fast and never passes through the emulator."""
    with Cluster() as cluster:
        before = emulator_stats()
        for source, target in (("xj1", "xj2"), ("cq2", "cq1")):
            rtt = cluster.rtt(source, target)["median_ms"]
            check(rtt < 1.0, f"{source} -> {target} round trip {rtt:.3f} ms < 1 ms")
        rate = cluster.throughput("xj1", "xj2", flows=2, seconds=3, skip=1)["steady_bps"]
        check(rate >= 2e9, f"xj1 -> xj2 throughput {rate / 1e9:.2f} Gbit/s is well above the 1 Gbit/s WAN")
        after = emulator_stats()
        for old, new in zip(before["links"], after["links"]):
            check(new["offered_packets"] == old["offered_packets"],
                  f"emulator saw no packet {new['from']} -> {new['to']} ({new['offered_packets']})")
        check(after["unroutable_packets"] == before["unroutable_packets"], "emulator saw no stray packet")


def test_three_regions():
    """Three regions route to each other, each pair through its own link."""
    with Cluster("three-regions") as cluster:
        for source, target, rtt in (("xj1", "cq1", 40), ("xj2", "sh1", 60), ("sh2", "cq2", 30)):
            measured = cluster.rtt(source, target, count=10)["median_ms"]
            check(within_rtt(measured, rtt), f"{source} -> {target}: {measured:.2f} ms for a {rtt} ms link")


def hostnames(result):
    # OpenMPI may warn about a harmless setpgid race on stderr; ranks print on stdout.
    return collections.Counter(line.split()[0] for line in result.stdout.splitlines() if line.strip())


def test_mpirun():
    """`vcluster run -- -np 8 hostname` places two ranks on each virtual node."""
    with Cluster():
        result = vcluster("run", "--timeout", "60", "--", "-np", "8", "hostname", timeout=90)
        counts = hostnames(result)
        check(counts == {"xj1": 2, "xj2": 2, "cq1": 2, "cq2": 2}, f"ranks per node: {dict(counts)}")
        result = vcluster("run", "--timeout", "60", "--", "-np", "4", "--map-by", "node", "sh", "-c",
                          'echo "$(hostname) $SILK_CLUSTER_SPEC"', timeout=90)
        spec = os.path.join(SPECS, "xinjiang-chongqing.textproto")
        lines = sorted(line for line in result.stdout.splitlines() if line.strip())
        check(lines == sorted(f"{n} {spec}" for n in ("xj1", "xj2", "cq1", "cq2")),
              f"every rank sees SILK_CLUSTER_SPEC: {lines}")
        failed = vcluster("run", "--timeout", "60", "--", "-np", "2", "false", timeout=90, check_status=False)
        check(failed.returncode != 0, f"mpirun's failure reaches the caller (exit {failed.returncode})")


def test_down():
    """`down` removes everything, also after a crash or Ctrl-C, and is safe twice; `up` replaces a stale cluster."""
    links_before = root_links()
    with Cluster() as cluster:
        vcluster("up")  # on top of a running cluster: cleans it first
        check(within_rtt(cluster.rtt("xj1", "cq1", count=5)["median_ms"], 40), "a second `up` gives a working cluster")
        # A crash: the emulator dies and a process is left inside a node.
        with open("/run/silk-vcluster/state.json") as state:
            os.kill(json.load(state)["wanem_pid"], signal.SIGKILL)
        stray = subprocess.Popen(["ip", "netns", "exec", "silk-cq2", "sleep", "300"])
        vcluster("down")
        stray.wait(timeout=10)
        check(leftovers() == {"namespaces": [], "processes": [], "files": []}, f"nothing left: {leftovers()}")
    check(vcluster("down").returncode == 0, "a second `down` succeeds")
    # Ctrl-C, or a crash, at different moments of `up`.
    for sig, delay in ((signal.SIGINT, 0.12), (signal.SIGINT, 0.2), (signal.SIGKILL, 0.1), (signal.SIGKILL, 0.15),
                       (signal.SIGKILL, 0.3)):
        upping = subprocess.Popen([VCLUSTER, "up"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        upping.send_signal(sig)
        upping.wait(timeout=60)
        vcluster("down")
        check(leftovers() == {"namespaces": [], "processes": [], "files": []},
              f"nothing left after {signal.Signals(sig).name} {delay}s into `up`: {leftovers()}")
    check(root_links() == links_before, f"no device left in the root namespace: {root_links()}")


def test_not_root():
    """Without root, vcluster says so and exits non-zero."""
    command = [VCLUSTER, "status"]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + command
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    check(result.returncode != 0, f"exit status {result.returncode} is non-zero")
    check("needs root" in result.stderr, f"says it needs root: {result.stderr.strip()}")


CASES = {name[5:]: function for name, function in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(main(CASES))
