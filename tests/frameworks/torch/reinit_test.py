"""destroy_process_group then init_process_group, ten times, env:// on one
MASTER_PORT (scripts that re-create their group, elastic restarts): every
initialisation joins the new group and finishes within seconds.

Usage: reinit_test.py [--rounds N] [--ranks R] [--backend silk|gloo]
                      [--others-wait S] [--store env|kept]
The ranks are spawned as separate processes and killed at a deadline.

What PyTorch 1.13 itself allows (measured with gloo as with silk, and the
reason --others-wait defaults to 0.5 s):
- env:// makes rank 0 host a fresh TCPStore per group. A rank that
  re-initialises before rank 0 has destroyed its group connects to the
  PREVIOUS group's store (PyTorch gives no way to tell), and every backend's
  rendezvous then fails: gloo with "Socket Timeout" or a connect to an old
  address; silk names the cause on that rank ("reached the previous group's
  store") and rank 0 gives up at the start-up timeout. So the others wait a
  moment after destroy_process_group (--others-wait).
- --store kept (one TCPStore for the process's life, passed as store=):
  PyTorch's own store-based barrier counts past world_size on the second
  group and times out, for any backend. Silk's own rendezvous on such a store
  is clean (bootstrap sessions, tests/runtime/bootstrap/store_bootstrap_test).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

ROUND_LIMIT_S = 10  # one init + all_reduce + destroy; a stale rendezvous waits the whole group timeout
GROUP_TIMEOUT_S = 20
FORBIDDEN = ["terminate called", "Segmentation fault", "Sanitizer", "Traceback"]


def driver(args, worker_argv):
    started = time.monotonic()
    results = launch.spawn(args.ranks, [os.path.abspath(__file__)] + worker_argv + ["--rank"],
                           timeout=30 + args.rounds * ROUND_LIMIT_S)
    ok = True
    for rank, (code, output) in enumerate(results):
        print(f"----- rank {rank} (exit code {code})\n{output.strip()}")
        if code != 0:
            print(f"FAILED: rank {rank} exited with {code}")
            ok = False
        if f"rank {rank}: {args.rounds} rounds OK" not in output:
            print(f"FAILED: rank {rank} did not finish its {args.rounds} rounds")
            ok = False
        for needle in FORBIDDEN:
            if needle in output:
                print(f"FAILED: rank {rank}'s output shows {needle!r}")
                ok = False
    print(f"{args.rounds} rounds of {args.backend} on {args.ranks} ranks in {time.monotonic() - started:.1f} s")
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


def worker(args):
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    import silk.torch  # noqa: F401

    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    timeout = timedelta(seconds=GROUP_TIMEOUT_S)
    store = None
    if args.store == "kept":
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, rank == 0, timeout)
    slowest = 0.0
    for round_ in range(args.rounds):
        start = time.monotonic()
        if store is None:
            dist.init_process_group(args.backend, timeout=timeout)
        else:
            dist.init_process_group(args.backend, store=store, rank=rank, world_size=world, timeout=timeout)
        t = torch.full((1000,), float(rank + 1 + round_))
        dist.all_reduce(t)
        expected = world * (world + 1) / 2 + world * round_
        if t[0].item() != expected:
            print(f"rank {rank}: round {round_} gave {t[0].item()}, expected {expected}", flush=True)
            return 1
        dist.destroy_process_group()
        if rank != 0:
            time.sleep(args.others_wait)
        slowest = max(slowest, time.monotonic() - start)
    print(f"rank {rank}: {args.rounds} rounds OK (slowest {slowest:.2f} s)", flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--backend", default="silk")
    parser.add_argument("--others-wait", type=float, default=0.5,
                        help="seconds ranks other than 0 wait after destroy_process_group")
    parser.add_argument("--store", choices=["env", "kept"], default="env")
    parser.add_argument("--rank", action="store_true", help="run as one rank (set by the driver)")
    args = parser.parse_args()
    if args.rank:
        return worker(args)
    worker_argv = ["--rounds", str(args.rounds), "--backend", args.backend, "--others-wait", str(args.others_wait),
                   "--store", args.store]
    return driver(args, worker_argv)


if __name__ == "__main__":
    sys.exit(main())
