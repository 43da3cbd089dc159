#!/usr/bin/python3
"""The WAN cut under a loop of checked all-reduces, on the virtual cluster:
a partition is detected and named, a short cut costs about its length and
changes no result, and a cut longer than SILK_WAN_OUTAGE_TOLERANCE fails
every rank with the partition named.

While the link is down the ranks dial replacement connections; the first
that gets through after the heal resumes its lane where the peer's count
says, so the loop goes on within about half a second of the heal (without
that, TCP's own retransmission took 0.5 to 3 s).

Usage (as root): vcluster_outage_test.py REPO CASE   CASE: short_cut | short_cut_small | past_tolerance
Exits 77 (skipped) without root.
"""
import os
import subprocess
import sys

REPO, CASE = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(REPO, "cluster"))
from vcluster_lib import faults  # noqa: E402

VCLUSTER = os.path.join(REPO, "cluster", "vcluster")
failures = []


def check(condition, message):
    print(("ok      " if condition else "FAILED  ") + message, flush=True)
    if not condition:
        failures.append(message)


def short_cut():
    base = faults.loop(iters=60, size=1 << 20, env=["SILK_TIMEOUT=20s"])
    check(base.returncode == 0 and base.wrong == 0, f"uncut run exact ({base.seconds} s, exit {base.returncode})")
    run = faults.loop(iters=60, size=1 << 20, cut=(1.0, 3.0), env=["SILK_TIMEOUT=20s"])
    check(run.returncode == 0, f"the loop survived a 3 s cut (exit {run.returncode})")
    check(run.wrong == 0 and len(run.iterations) == 60 and all(i["ok"] for i in run.iterations),
          f"every result exact ({run.wrong} wrong, {len(run.iterations)} iterations)")
    detected, line = run.first_line(faults.OUTAGE_LOG, after=run.cut_at or 0)
    check(detected is not None and detected - run.cut_at < 2.0,
          f"the outage was detected and named within 2 s: {line!r} "
          f"after {None if detected is None else round(detected - run.cut_at, 2)} s")
    # What the cut cost: the loop's stall around it (the whole run's extra time
    # also counts whatever ran beside it, as ctest -j2 does).
    before = run.last_end_before(run.cut_at) if run.cut_at else None
    after = run.first_end_after(run.healed_at) if run.healed_at else None
    if before is not None and after is not None:
        stall, cut = after - before, run.healed_at - run.cut_at
        check(stall <= cut + 2.0, f"the loop stalled {stall:.2f} s around a {cut:.2f} s cut (bound: the cut + 2 s); "
              f"the whole run took {run.seconds - base.seconds:.2f} s longer than uncut")
    else:
        check(False, "iterations ended before the cut and after the heal")
    first = run.first_end_after(run.healed_at) if run.healed_at else None
    check(first is not None and first - run.healed_at < 2.0,
          f"first all-reduce {None if first is None else round(first - run.healed_at, 2)} s after heal")


def short_cut_small():
    """Small all-reduces, whose node phases wait in shared-memory slots
    (SILK_NODE_SLOTS=1), and a
    cut longer than the operation timeout: every wait, in a slot or on a
    socket, stretches while the WAN is down, so the loop rides it out."""
    # The start-up probe moves megabytes across the WAN: it keeps its own bound.
    env = ["SILK_TIMEOUT=2s", "SILK_STARTUP_TIMEOUT=60s", "SILK_NODE_SLOTS=1"]
    run = faults.loop(iters=400, size=64 << 10, cut=(1.0, 3.0), env=env)
    check(run.returncode == 0, f"the loop survived a 3 s cut with a 2 s timeout (exit {run.returncode})")
    check(run.wrong == 0 and len(run.iterations) == 400 and all(i["ok"] for i in run.iterations),
          f"every result exact ({run.wrong} wrong, {len(run.iterations)} iterations)")
    first = run.first_end_after(run.healed_at) if run.healed_at else None
    check(first is not None and first - run.healed_at < 2.0,
          f"first all-reduce {None if first is None else round(first - run.healed_at, 2)} s after heal")


def past_tolerance():
    env = ["SILK_TIMEOUT=4s", "SILK_WAN_OUTAGE_TOLERANCE=6s"]
    run = faults.loop(iters=100000, size=1 << 20, cut=(1.0, 14.0), env=env, timeout=120)
    check(run.returncode not in (0, None), f"the loop failed (exit {run.returncode})")
    failed, line = run.first_line("allreduce_loop: rank", after=run.cut_at or 0)
    check(failed is not None and failed - run.cut_at <= 6.0 + 1.0 + 2.0,
          f"the first rank gave up {None if failed is None else round(failed - run.cut_at, 2)} s after the cut "
          "(tolerance 6 s + detection 1 s + 2 s)")
    named = [l for _, l in run.lines if "allreduce_loop: rank" in l]
    check(named and all("no traffic from any of" in l for l in named),
          f"every rank's error names the partition ({len(named)} errors): {named[:2]}")


def main():
    if os.geteuid() != 0:
        print("skipped: needs root")
        return 77
    subprocess.run([VCLUSTER, "down"], capture_output=True)
    up = subprocess.run([VCLUSTER, "up"], capture_output=True, text=True)
    if up.returncode != 0:
        print(up.stdout + up.stderr)
        return 1
    try:
        {"short_cut": short_cut, "short_cut_small": short_cut_small, "past_tolerance": past_tolerance}[CASE]()
    finally:
        subprocess.run([VCLUSTER, "down"], capture_output=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
