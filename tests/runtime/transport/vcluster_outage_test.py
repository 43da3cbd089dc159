#!/usr/bin/python3
"""The WAN cut under a loop of checked all-reduces, on the virtual cluster:
a partition is detected and named, a short cut costs about its length and
changes no result, and a cut longer than SILK_WAN_OUTAGE_TOLERANCE fails
every rank with the partition named.

Usage (as root): vcluster_outage_test.py REPO CASE   CASE: short_cut | past_tolerance
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
    if base.seconds is not None and run.seconds is not None:
        extra = run.seconds - base.seconds
        check(extra <= 3.0 + 2.0, f"the cut cost {extra:.2f} s (budget: its 3 s + 2 s)")
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
        {"short_cut": short_cut, "past_tolerance": past_tolerance}[CASE]()
    finally:
        subprocess.run([VCLUSTER, "down"], capture_output=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
