#!/usr/bin/python3
"""Point-to-point across the emulated WAN of the virtual cluster, through the
C API (tests/collectives/c_api/wan_p2p.c): 2 ranks in Xinjiang, 2 in Chongqing;
the ring exchange in a group, a ping-pong between the regions whose round trip
must show the WAN's 40 ms, and 64 MiB checked on arrival and counted by
silk_comm_stats as WAN bytes.

Usage (as root): vcluster_p2p_test.py REPO WAN_P2P_BINARY. Exits 77 (skipped) without root.
"""
import os
import re
import subprocess
import sys

REPO, BINARY = sys.argv[1], sys.argv[2]
VCLUSTER = os.path.join(REPO, "cluster", "vcluster")


def main():
    if os.geteuid() != 0:
        print("skipped: the virtual cluster needs root")
        return 77
    subprocess.run([VCLUSTER, "down"], capture_output=True)
    up = subprocess.run([VCLUSTER, "up", os.path.join(REPO, "cluster", "specs", "xinjiang-chongqing.textproto")],
                        capture_output=True, text=True)
    if up.returncode != 0:
        print(up.stdout + up.stderr)
        return 1
    try:
        run = subprocess.run([VCLUSTER, "run", "--timeout", "150", "--", "-np", "4", "--host", "xj1:2,cq1:2",
                              "-x", "SILK_TIMEOUT=60", BINARY], capture_output=True, text=True, timeout=200)
    finally:
        subprocess.run([VCLUSTER, "down"], capture_output=True)
    print(run.stdout[-3000:] + run.stderr[-3000:])
    failures = []
    if run.returncode != 0 or run.stdout.count("wan p2p passed") != 4:
        failures.append(f"exit {run.returncode}, {run.stdout.count('wan p2p passed')} of 4 ranks passed")
    m = re.search(r"wan_p2p: rtt_ms=([\d.]+) mib_per_s=([\d.]+) wan_bytes_sent=(\d+)", run.stdout)
    if m is None:
        failures.append("no figures from rank 0")
    else:
        rtt, rate, wan = float(m.group(1)), float(m.group(2)), int(m.group(3))
        if not 35 <= rtt <= 100:
            failures.append(f"ping-pong round trip {rtt} ms: not the WAN's 40 ms")
        if wan < 64 << 20:
            failures.append(f"only {wan} WAN bytes counted for a 64 MiB send")
        print(f"round trip {rtt:.1f} ms, 64 MiB at {rate:.0f} MiB/s, {wan} WAN bytes sent by rank 0")
    for f in failures:
        print("FAILED  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
