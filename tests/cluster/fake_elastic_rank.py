#!/usr/bin/python3
"""A stand-in for `silk-train --elastic` in the launcher's and the harness's own tests: no Silk, no network.

Every rank follows one clock (t0 from the first rank's file next to the events):
step s ends at t0 + (s + 1) * step_seconds. It writes the same event lines as
silk-train --elastic (step, joined, final) and, with --env-out, the launcher's
variables it received. Incarnation 0 of --fail-member exits 3 at --fail-step.

  fake_elastic_rank.py --events DIR/events-%r.jsonl [--steps 20] [--step-seconds 0.1]
                       [--fail-member M --fail-step S] [--env-out DIR/env-%r-%i.json]
"""
import argparse
import json
import os
import socket
import sys
import time

VARIABLES = ("SILK_ELASTIC", "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "SILK_ELASTIC_INCARNATION",
             "SILK_NODE", "SILK_REGION", "SILK_CLUSTER_SPEC", "SILK_JOB_TOKEN", "SILK_SOCKET_IFNAME", "FAKE_EXTRA")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--elastic", action="store_true")
    p.add_argument("--events", required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--step-seconds", type=float, default=0.1)
    p.add_argument("--policy", default="sync")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--fail-member", type=int, default=-1)
    p.add_argument("--fail-step", type=int, default=-1)
    p.add_argument("--env-out")
    args = p.parse_args()
    member = int(os.environ["RANK"])
    incarnation = int(os.environ.get("SILK_ELASTIC_INCARNATION", "0"))
    size = int(os.environ["WORLD_SIZE"])
    if args.env_out:
        reached = None
        try:  # the coordinator answers a TCP connection from this node
            with socket.create_connection((os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])), timeout=5):
                reached = True
        except (OSError, KeyError, ValueError) as error:
            reached = str(error)
        path = args.env_out.replace("%r", str(member)).replace("%i", str(incarnation))
        with open(path, "w") as f:
            json.dump({k: os.environ.get(k) for k in VARIABLES} | {"hostname": os.uname().nodename,
                                                                    "coordinator_reached": reached}, f)
    events = open(args.events.replace("%r", str(member)), "a")

    def emit(kind, **fields):
        events.write(json.dumps({"t": time.time(), "member": member, "event": kind, **fields}) + "\n")
        events.flush()

    clock = os.path.join(os.path.dirname(args.events) or ".", "fake-clock")
    try:
        fd = os.open(clock, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, repr(time.time()).encode())
        os.close(fd)
    except FileExistsError:
        time.sleep(0.05)
    with open(clock) as f:
        t0 = float(f.read())
    step = max(0, int((time.time() - t0) / args.step_seconds)) if incarnation > 0 else 0
    epoch = 0  # it never reconfigures: every member counts its steps under epoch 0
    if incarnation > 0:
        emit("joined", epoch=epoch, step=step)
    print(f"fake rank {member} incarnation {incarnation} on {os.uname().nodename} from step {step}", flush=True)
    while step < args.steps:
        time.sleep(max(0.0, t0 + (step + 1) * args.step_seconds - time.time()))
        if member == args.fail_member and step == args.fail_step and incarnation == 0:
            print(f"fake rank {member}: failing at step {step} as asked", flush=True)
            sys.exit(3)
        emit("step", step=step, epoch=epoch, size=size, rank=member, loss=1.0 / (step + 1), samples=64 * size)
        step += 1
    emit("final", step=step, param_digest="00112233445566aa", loss=1.0 / step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
