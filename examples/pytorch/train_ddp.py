#!/usr/bin/env python3
"""Data-parallel training of a small MLP with torch.distributed, over Silk or Gloo.

The data is synthetic and deterministic: step s's global batch comes from a
generator seeded with (seed, s), and rank r trains on its r-th shard, so two
runs with the same seed and world size see the same data in the same order,
whatever the backend.

Launch with mpirun (ranks come from OMPI_COMM_WORLD_*; MASTER_ADDR defaults to
127.0.0.1, so pass -x MASTER_ADDR=<first host> across machines), with torchrun,
or with MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE set by hand (env://):

    mpirun -np 4 python3 examples/pytorch/train_ddp.py --backend silk --steps 20
    torchrun --nproc_per_node 4 examples/pytorch/train_ddp.py --backend gloo

--hook chooses how gradients are synchronised: none (DDP's all-reduce every
step), delayed (silk.torch.hooks.delayed: the all-reduce overlaps the next
step and is applied one step late, as a correction to the local gradient),
delayed-average (the same, applying the previous step's average alone),
periodic (no DDP; silk.torch.hooks.PeriodicAverager averages the replicas
every --period steps). Rank 0 prints
step, loss (its own shard's) and step time; --json writes them as JSON.
"""
import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["gloo", "silk"], default="silk")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--hook", choices=["none", "delayed", "delayed-average", "periodic"], default="none")
    p.add_argument("--period", type=int, default=8, help="steps between averages for --hook periodic")
    p.add_argument("--batch", type=int, default=64, help="samples per rank per step")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (inner optimizer)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--timeout", type=float, default=120, help="seconds; the process group's operation timeout")
    p.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="write the results as JSON to PATH (or stdout)")
    return p.parse_args()


def launcher_environment():
    """Fills the env:// variables from mpirun's, where they are not set."""
    for source, target in (("OMPI_COMM_WORLD_RANK", "RANK"), ("OMPI_COMM_WORLD_SIZE", "WORLD_SIZE"),
                           ("OMPI_COMM_WORLD_LOCAL_RANK", "LOCAL_RANK"), ("PMI_RANK", "RANK"),
                           ("PMI_SIZE", "WORLD_SIZE")):
        if source in os.environ and target not in os.environ:
            os.environ[target] = os.environ[source]
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")


def make_model(features, hidden):
    return nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 1))


def global_batch(seed, step, size, features, teacher):
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    x = torch.randn(size, features, generator=g)
    with torch.no_grad():
        y = teacher(x) + 0.01 * torch.randn(size, 1, generator=g)
    return x, y


def main():
    args = parse_args()
    launcher_environment()
    torch.set_num_threads(args.threads)
    if args.backend == "silk" or args.hook != "none":
        import silk.torch  # noqa: F401  (registers the "silk" backend; hooks)
    dist.init_process_group(args.backend, init_method="env://", timeout=timedelta(seconds=args.timeout))
    rank, world = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(args.seed)
    teacher = make_model(args.features, 32)
    model = make_model(args.features, args.hidden)  # same initial weights on every rank

    state = averager = None
    if args.hook == "periodic":
        from silk.torch.hooks import PeriodicAverager
        averager = PeriodicAverager(model, period=args.period, outer_lr=0.7, momentum=0.9)
        net = model
    else:
        net = nn.parallel.DistributedDataParallel(model)
        if args.hook.startswith("delayed"):
            from silk.torch.hooks import DelayedState, delayed
            state = DelayedState(mode="average" if args.hook == "delayed-average" else "corrected")
            net.register_comm_hook(state, delayed)
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = nn.MSELoss()

    records = []
    for step in range(args.steps):
        x, y = global_batch(args.seed, step, args.batch * world, args.features, teacher)
        x, y = x[rank * args.batch:(rank + 1) * args.batch], y[rank * args.batch:(rank + 1) * args.batch]
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        if averager is not None:
            averager.step()
        elapsed = time.perf_counter() - start
        records.append({"step": step, "loss": loss.item(), "step_time_s": elapsed})
        if rank == 0 and args.json != "-":
            print(f"step {step:4d}  loss {loss.item():.6f}  step time {elapsed * 1e3:8.2f} ms", flush=True)

    if state is not None:
        state.drain()
    with torch.no_grad():
        checksum = float(sum(p.double().sum() for p in model.parameters()))
    checksums = [None] * world
    dist.all_gather_object(checksums, checksum)
    times = [r["step_time_s"] for r in records[1:]] or [r["step_time_s"] for r in records]
    result = {
        "backend": args.backend, "hook": args.hook, "world_size": world, "steps": records,
        "median_step_time_s": statistics.median(times) if times else 0.0,
        "param_checksums": checksums,
    }
    if rank == 0:
        print(f"{args.backend} {args.hook} x{world}: median step time {result['median_step_time_s'] * 1e3:.2f} ms, "
              f"final loss {records[-1]['loss'] if records else float('nan'):.6f}",
              file=sys.stderr if args.json == "-" else sys.stdout, flush=True)
        if args.json == "-":
            json.dump(result, sys.stdout)
            print(flush=True)
        elif args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
    dist.barrier()
    if args.backend == "gloo":
        # PyTorch 1.13's ProcessGroupGloo can deadlock when it is destroyed: its
        # destructor joins its worker threads while holding the GIL, which a
        # worker still freeing a Python tensor waits for (seen under load, in
        # DDP's Reducer teardown). Everything is written: leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
