#!/usr/bin/env python3
"""A byte-level GPT-style language model trained with DDP over Silk or Gloo.

The model (lm_model.py) is a small decoder: causal self-attention, byte
vocabulary, --layers blocks of --width. The text is the Debian package
`fortunes` (lm_data.py: every tenth fortune held out, the rest cut into
samples of --context + 1 bytes; deterministic order, each rank its slice of
every global batch), so two runs with the same world size and global batch
see the same bytes in the same order, whatever the backend or the policy.

--policy chooses how the replicas stay together:
  sync      plain DDP: the gradient all-reduced every step (bit-identical replicas)
  delayed   DDP + silk.torch.hooks.delayed: each step's all-reduce overlaps the
            next step and corrects the local gradient one step late
  periodic  no DDP; silk.torch.hooks.PeriodicAverager: local AdamW steps, every
            --period steps one all-reduce of the parameter change and a DiLoCo
            outer Nesterov step
  powersgd  DDP + torch's PowerSGD hook (rank --powersgd-rank, one bucket)

Launch with mpirun (MASTER_ADDR defaults to 127.0.0.1; pass -x MASTER_ADDR=
<first host> across machines), torchrun, or the env:// variables by hand:

    mpirun -np 4 /usr/bin/python3 examples/pytorch/train_lm.py --backend silk --steps 100
    mpirun -np 4 /usr/bin/python3 examples/pytorch/train_lm.py --policy periodic --period 50 --json lm.json

Rank 0 prints a line per step: its loss, tokens/s (global batch over the
step), the step time and the bytes it sent across regions (when the cluster
spec is known: `cluster/vcluster run`). Every --eval-every steps the held-out
loss is measured (each rank a slice of the held-out samples, on its own
replica; periodic: on the synchronised model), off the clock. --json PATH
writes `losses` (every step's training loss, the mean over ranks),
`heldout_loss`, `tokens_per_s`, `wan_bytes_per_step` and more.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lm_data import Corpus  # noqa: E402
from lm_model import GPT, byte_loss  # noqa: E402
from train_ddp import launcher_environment  # noqa: E402
from wan_bytes import WanCounter  # noqa: E402

POLICIES = ("sync", "delayed", "periodic", "powersgd")
CODES = ("none", "bf16", "int8", "int4", "topk")  # silk.torch.hooks.COMPRESSIONS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["gloo", "silk"], default="silk")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--policy", choices=POLICIES, default="sync")
    p.add_argument("--period", type=int, default=50, help="steps between outer steps for --policy periodic")
    p.add_argument("--outer-lr", type=float, default=0.7, help="periodic: outer learning rate")
    p.add_argument("--outer-momentum", type=float, default=0.9, help="periodic: outer Nesterov momentum")
    p.add_argument("--inner", choices=["rank", "region"], default="rank",
                   help="periodic: what trains one replica between outer steps: each rank alone, or the ranks "
                   "of a region together (DDP inside the region every step; DiLoCo's workers)")
    p.add_argument("--outer-overlap", action="store_true",
                   help="periodic: the outer all-reduce overlaps the next inner step (applied one step late)")
    p.add_argument("--wan-compression", choices=CODES, default="none",
                   help="sync, delayed: each DDP bucket's cross-region hop as this code, with error feedback per "
                   "bucket (silk only; silk.torch.hooks.compressed, DelayedState(compression=...))")
    p.add_argument("--outer-compression", choices=CODES, default="none",
                   help="periodic: the outer gradient's cross-region hop (silk only; error feedback)")
    p.add_argument("--delayed-mode", choices=["corrected", "average"], default="corrected",
                   help="delayed: what a step applies while its own all-reduce runs (silk.torch.hooks.DelayedState)")
    p.add_argument("--delayed-local", choices=["rank", "region"], default="rank",
                   help="delayed, mode corrected: the fresh term is this rank's gradient, or its region's average "
                   "(an all-reduce inside the region every step; only the WAN exchange is late)")
    p.add_argument("--powersgd-rank", type=int, default=4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--context", type=int, default=128, help="bytes per sample")
    p.add_argument("--global-batch", type=int, default=4, help="samples per step, all ranks together")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate")
    p.add_argument("--warmup", type=int, default=10, help="steps of linear warm-up (then cosine to lr/10)")
    p.add_argument("--bucket-mb", type=float, default=25, help="DDP bucket_cap_mb")
    p.add_argument("--eval-every", type=int, default=25, help="steps between held-out evaluations (0: end only)")
    p.add_argument("--heldout-samples", type=int, default=64)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--compute-cpus", help="CPUs for the training thread (e.g. 1); the backend's threads "
                   "stay where SILK_CPUS (or the process's affinity) puts them")
    p.add_argument("--data-dir", default=None, help="fortune collections (default /usr/share/games/fortunes)")
    p.add_argument("--timeout", type=float, default=300, help="seconds; the process group's operation timeout")
    p.add_argument("--json", metavar="PATH", help="write the run's figures as JSON to PATH")
    args = p.parse_args(argv)
    if args.wan_compression != "none" and (args.backend != "silk" or args.policy not in ("sync", "delayed")):
        p.error("--wan-compression is for --backend silk with --policy sync or delayed")
    return args


def cpu_list(text):
    cpus = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def init_group(args):
    """init_process_group, with the backend's threads on SILK_CPUS (if set) and
    the calling thread, which trains, moved to --compute-cpus afterwards."""
    if args.compute_cpus and os.environ.get("SILK_CPUS"):
        os.sched_setaffinity(0, cpu_list(os.environ["SILK_CPUS"]))  # gloo's threads inherit it
    if args.backend == "silk" or args.policy != "sync":
        import silk.torch  # noqa: F401  (registers "silk"; hooks)
    dist.init_process_group(args.backend, init_method="env://", timeout=timedelta(seconds=args.timeout))
    if args.compute_cpus:
        os.sched_setaffinity(0, cpu_list(args.compute_cpus))  # this thread only


def code(name):
    """A --*-compression flag as the hooks take it: None for "none"."""
    return None if name == "none" else name


def wrap(args, model):
    """(the module to call, the averager or None, the delayed state or None)."""
    if args.policy == "periodic":
        from silk.torch.hooks import PeriodicAverager
        if args.inner == "region":
            model = nn.parallel.DistributedDataParallel(model, process_group=region_group(),
                                                        bucket_cap_mb=args.bucket_mb)
        return model, PeriodicAverager(model, period=args.period, outer_lr=args.outer_lr,
                                       momentum=args.outer_momentum, compression=code(args.outer_compression),
                                       overlap=args.outer_overlap), None
    net = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
    if args.policy == "delayed":
        from silk.torch.hooks import DelayedState, delayed
        local = region_group() if args.delayed_local == "region" else None
        state = DelayedState(mode=args.delayed_mode, local_group=local, compression=code(args.wan_compression))
        net.register_comm_hook(state, delayed)
        return net, None, state
    if args.policy == "sync" and args.wan_compression != "none":
        from silk.torch.hooks import CompressedState, compressed
        net.register_comm_hook(CompressedState(args.wan_compression), compressed)
    if args.policy == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd
        # One bucket: nested all-reduces from several buckets' callbacks could
        # interleave differently on different ranks (docs/pytorch.md).
        net = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1024)
        state = powersgd.PowerSGDState(process_group=None, matrix_approximation_rank=args.powersgd_rank,
                                       start_powerSGD_iter=2, random_seed=args.seed)
        net.register_comm_hook(state, powersgd.powerSGD_hook)
    return net, None, None


def region_group():
    """The process group of this rank's region (every rank makes every region's group, in one order)."""
    regions = [None] * dist.get_world_size()
    dist.all_gather_object(regions, WanCounter().local_region())
    mine = None
    for region in sorted(set(regions)):
        group = dist.new_group([r for r, name in enumerate(regions) if name == region])
        if region == regions[dist.get_rank()]:
            mine = group
    return mine


def learning_rate(args, step):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def heldout(model, averager, inputs, targets):
    """(sum of per-byte losses, bytes) of this rank's held-out slice; periodic:
    on the synchronised model (the anchor), which is what a user would keep."""
    if len(inputs) == 0:
        return 0.0, 0
    saved = None
    if averager is not None:
        saved = [p.detach().clone() for p in averager.params]
        for p, a in zip(averager.params, averager.anchor):
            p.copy_(a)
    model.eval()
    total = sum(byte_loss(model(inputs[i:i + 8]), targets[i:i + 8]).item() * targets[i:i + 8].numel()
                for i in range(0, len(inputs), 8))
    model.train()
    if saved is not None:
        for p, s in zip(averager.params, saved):
            p.copy_(s)
    return total, targets.numel()


def train(args, corpus, model, net, averager, rank):
    """The training loop; returns this rank's records and held-out points."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    world = dist.get_world_size()
    eval_x, eval_y = corpus.heldout_shard(rank, world, args.heldout_samples)
    wan = WanCounter()
    tokens = args.global_batch * args.context
    records, points, clock = [], [], 0.0
    if args.eval_every:  # the starting point of the held-out curve
        points.append({"step": 0, "train_time_s": 0.0, "sum": heldout(model, averager, eval_x, eval_y)})
    wan_before = wan.sent()
    for step in range(args.steps):
        x, y = corpus.batch(step, rank)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = byte_loss(net(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        synced = averager.step() if averager is not None else False
        if averager is not None and step + 1 == args.steps:
            averager.flush()  # --outer-overlap: the last outer step lands now
        elapsed = time.perf_counter() - start
        clock += elapsed
        sent = wan.sent()
        records.append({"step": step, "loss": loss.item(), "step_time_s": elapsed, "wan_bytes": sent - wan_before,
                        "epoch": corpus.stream.epoch_of(step)})
        wan_before = sent
        if rank == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  {tokens / elapsed:8.0f} tok/s  step {elapsed * 1e3:7.1f} ms"
                  f"  wan (rank 0) {records[-1]['wan_bytes'] / 1e6:7.3f} MB{'  outer step' if synced else ''}",
                  flush=True)
        last = step + 1 == args.steps
        if last or (args.eval_every and (step + 1) % args.eval_every == 0):
            points.append({"step": step + 1, "train_time_s": clock, "sum": heldout(model, averager, eval_x, eval_y)})
    return records, points


def parameters_digest(model):
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def replica_spread(model):
    """Largest |parameter - rank 0's| over all parameters (one broadcast, after training)."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    spread = torch.tensor([(flat - reference).abs().max().item()], dtype=torch.float64)
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    return spread.item()


def summarize(args, mine, world, parameters, spread):
    """Rank 0's figures from every rank's `mine` (one all_gather_object)."""
    every = [None] * world
    dist.all_gather_object(every, mine)
    steps = len(every[0]["records"])
    losses = [sum(r["records"][i]["loss"] for r in every) / world for i in range(steps)]
    # Step 0 builds DDP's buckets and warms caches: throughput counts the steps after it.
    timed = [sum(x["step_time_s"] for x in r["records"][1:]) for r in every]
    tokens = args.global_batch * args.context
    curve = [{"step": p["step"], "train_time_s": max(r["points"][i]["train_time_s"] for r in every),
              "loss": sum(r["points"][i]["sum"][0] for r in every) / max(1, sum(r["points"][i]["sum"][1] for r in every))}
             for i, p in enumerate(every[0]["points"])]
    wan = WanCounter()
    digests = [r["digest"] for r in every]
    return {
        "backend": args.backend, "policy": args.policy, "world_size": world, "steps": steps,
        "wan_compression": args.wan_compression,
        "regions": sorted({r["region"] for r in every}), "parameters": parameters,
        "gradient_bytes": parameters * 4, "tokens_per_step": tokens,
        "losses": losses, "final_loss": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
        "heldout_loss": curve[-1]["loss"] if curve else None,
        "heldout_perplexity": math.exp(curve[-1]["loss"]) if curve else None,
        "heldout_curve": curve,
        "tokens_per_s": tokens * (steps - 1) / max(timed) if steps > 1 and max(timed) > 0 else None,
        "step_time_s": [r["step_time_s"] for r in every[0]["records"]],
        "wan_bytes_per_step": sum(sum(x["wan_bytes"] for x in r["records"]) for r in every) / steps
        if wan.available and steps else None,
        "param_digests": digests, "params_identical": len(set(digests)) == 1, "replica_spread": spread,
        "epochs": every[0]["records"][-1]["epoch"] + 1 if steps else 0,
        "args": vars(args),
    }


def report(result):
    tps = result["tokens_per_s"]
    wan = result["wan_bytes_per_step"]
    print(f"{result['backend']} {result['policy']} x{result['world_size']} ({len(result['regions'])} region(s)): "
          f"{tps or 0:.0f} tokens/s, WAN {'n/a' if wan is None else f'{wan / 1e6:.3f} MB'}/step, "
          f"final loss {result['final_loss']:.4f}, held-out {result['heldout_loss']:.4f} "
          f"(perplexity {result['heldout_perplexity']:.2f})", flush=True)
    state = "identical" if result["params_identical"] else f"differ (largest difference {result['replica_spread']:.3g})"
    print(f"parameters on the {result['world_size']} ranks: {state}; digests {' '.join(result['param_digests'])}",
          flush=True)


def main(argv=None):
    args = parse_args(argv)
    launcher_environment()
    torch.set_num_threads(args.threads)
    init_group(args)
    rank, world = dist.get_rank(), dist.get_world_size()
    corpus = Corpus(args.context, args.global_batch, world, args.seed,
                    **({"directory": args.data_dir} if args.data_dir else {}))
    torch.manual_seed(args.seed)
    model = GPT(args.layers, args.width, args.heads, args.context)  # the same weights on every rank
    parameters = sum(p.numel() for p in model.parameters())
    if rank == 0:
        print(f"model: {args.layers} layers of {args.width}, {parameters / 1e6:.2f} M parameters "
              f"({parameters * 4 / 1e6:.1f} MB of float32 gradient); data: {len(corpus.train)} training and "
              f"{len(corpus.heldout)} held-out samples of {args.context} bytes; global batch {args.global_batch}; "
              f"{args.backend}, policy {args.policy}"
              f"{'' if args.wan_compression == 'none' else ', WAN hop ' + args.wan_compression}, {world} ranks",
              flush=True)
    net, averager, state = wrap(args, model)
    records, points = train(args, corpus, model, net, averager, rank)
    if state is not None:
        state.drain()
    mine = {"records": records, "points": points, "digest": parameters_digest(model),
            "region": WanCounter().local_region()}
    result = summarize(args, mine, world, parameters, replica_spread(model))
    if rank == 0:
        report(result)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
    dist.barrier()
    if args.backend == "gloo":
        # PyTorch 1.13's ProcessGroupGloo can deadlock in its destructor (see train_ddp.py).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
