"""Future callbacks that issue collectives on their own group and wait for them.

Usage: callbacks_test.py SCENARIO, where SCENARIO is
  powersgd         -- DDP with torch's stock PowerSGD hook (powerSGD_hook),
                      whose future callbacks all-reduce P and Q and wait for
                      them, over a silk group and over gloo in the same
                      processes (mpirun -np 3, same seeds, same data): the
                      parameters after the steps agree with gloo's, and are
                      bit-identical on every rank under silk;
  batched_powersgd -- the same with batched_powerSGD_hook (torch 1.13's passes
                      one 2-D matrix to _orthogonalize, which asserts a 3-D
                      batch, on any backend: the test gives it a batch of one);
  then_chain       -- fut.then(...) chains over "silk" whose callbacks run a
                      blocking all_reduce, wait on a nested all-reduce's
                      future, and wait on a sibling operation's future;
  then_timeout     -- rank 1 of 2 never joins the nested all-reduce that rank
                      0's callback waits for: the chain raises the group's
                      timeout naming the operation, within the timeout.
The ranks are killed at a deadline, so a deadlock fails the test instead of
hanging it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

RANKS = 3
STEPS = 8
GROUP_TIMEOUT_S = 60
NESTED_TIMEOUT_S = 4  # then_timeout's group timeout
# PowerSGD's arithmetic (products, orthogonalisation) is the same on both
# backends; only the order in which the all-reduces sum the three ranks'
# float32 values differs (Silk: each chunk's owner, in rank order; gloo: its
# ring), a few ulps per step (4.5e-8 seen after 8 steps).
TOLERANCE = 1e-5

SCENARIOS = {  # scenario -> (launch, ranks, deadline in seconds)
    "powersgd": ("mpirun", RANKS, 150),
    "batched_powersgd": ("mpirun", RANKS, 150),
    "then_chain": ("mpirun", RANKS, 100),
    "then_timeout": ("spawn", 2, 100),
}


def driver(scenario):
    how, ranks, deadline = SCENARIOS[scenario]
    argv = [os.path.abspath(__file__), scenario, "--rank"]
    if how == "mpirun":
        code, output = launch.mpirun(ranks, argv, timeout=deadline)
        print(output)
        results = [(code, output)]
    else:
        results = launch.spawn(ranks, argv, timeout=deadline)
        for rank, (code, output) in enumerate(results):
            print(f"----- rank {rank} (exit code {code})\n{output.strip()}")
    output = "".join(o for _, o in results)
    ok = all(code == 0 for code, _ in results) and output.count(f"{scenario} OK") == ranks
    for needle in ("Traceback", "terminate called", "Segmentation fault", "Sanitizer"):
        if needle in output:
            print(f"FAILED: the output shows {needle!r}")
            ok = False
    print("PASSED" if ok else f"FAILED (exit codes {[code for code, _ in results]}; None: killed at the deadline)")
    return 0 if ok else 1


def powersgd(rank, world, batched):
    import hashlib
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powerSGD

    dist.init_process_group("gloo", timeout=timedelta(seconds=GROUP_TIMEOUT_S))
    silk_group = dist.new_group(backend="silk", timeout=timedelta(seconds=GROUP_TIMEOUT_S))
    gloo_group = dist.new_group(backend="gloo", timeout=timedelta(seconds=GROUP_TIMEOUT_S))
    hook = powerSGD.batched_powerSGD_hook if batched else powerSGD.powerSGD_hook
    stock_orthogonalize = powerSGD._orthogonalize

    def orthogonalize(matrices, epsilon=0):  # in place, so a view of a 2-D matrix as a batch of one will do
        return stock_orthogonalize(matrices.unsqueeze(0) if matrices.dim() == 2 else matrices, epsilon)
    powerSGD._orthogonalize = orthogonalize
    failures = []

    def batch(step):
        g = torch.Generator().manual_seed(1000 * step + rank)
        x = torch.randn(16, 32, generator=g)
        return x, torch.sin(x.sum(1, keepdim=True))

    def train(group):
        torch.manual_seed(7)
        model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 1))
        ddp = nn.parallel.DistributedDataParallel(model, process_group=group)
        # Compression from step 2 (the first two are plain all-reduces, as
        # PowerSGD requires with error feedback and warm start).
        state = powerSGD.PowerSGDState(process_group=group, matrix_approximation_rank=2, start_powerSGD_iter=2,
                                       min_compression_rate=1, random_seed=11)
        ddp.register_comm_hook(state, hook)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        for step in range(STEPS):
            optimizer.zero_grad()
            x, y = batch(step)
            ((ddp(x) - y) ** 2).mean().backward()  # waits for the hook's future chain
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()], state

    gloo_params, _ = train(gloo_group)
    silk_params, silk_state = train(silk_group)
    rate = silk_state.compression_stats()[0]
    if not rate > 1:
        failures.append(f"PowerSGD did not compress (rate {rate})")
    worst = max((a - b).abs().max().item() for a, b in zip(silk_params, gloo_params))
    print(f"rank {rank}: silk vs gloo: max parameter difference {worst:.3g} after {STEPS} steps"
          f" (compression rate {rate:.3g})", flush=True)
    if not worst <= TOLERANCE:
        failures.append(f"silk's parameters differ from gloo's by {worst} (tolerance {TOLERANCE})")
    digest = hashlib.sha256(b"".join(p.numpy().tobytes() for p in silk_params)).hexdigest()
    digests = [None] * world
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        failures.append(f"silk's replicas differ across ranks: {digests}")
    dist.destroy_process_group()
    return failures


def then_chain(rank, world):
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    dist.init_process_group("silk", timeout=timedelta(seconds=GROUP_TIMEOUT_S))
    failures = []
    total = sum(r + 1 for r in range(world))  # sum over ranks of rank + 1

    def blocking_nested(fut):
        x = fut.value()[0] * 2
        dist.all_reduce(x)  # a synchronous collective, inside a future callback
        return x

    def waited_nested(fut):
        y = fut.value() + 1
        return dist.all_reduce(y, async_op=True).get_future().wait()[0]  # PowerSGD's shape

    for round in range(5):
        t = torch.full((1000,), float(rank + 1 + round))
        fut = dist.all_reduce(t, async_op=True).get_future()
        result = fut.then(blocking_nested).then(waited_nested).wait()
        s = total + world * round
        expected = world * (world * 2 * s + 1)
        if not torch.equal(result, torch.full((1000,), float(expected))):
            failures.append(f"round {round}: chain gave {result[:3].tolist()}..., expected {expected}")

    # A callback that waits for a later operation (issued before it ran).
    a, b = torch.ones(10), torch.full((10,), 2.0)
    first = dist.all_reduce(a, async_op=True).get_future()
    second = dist.all_reduce(b, async_op=True).get_future()
    both = first.then(lambda fut: fut.value()[0] + second.wait()[0]).wait()
    if not torch.equal(both, torch.full((10,), 3.0 * world)):
        failures.append(f"sibling wait gave {both.tolist()}")

    # A DDP comm hook whose callback all-reduces again (a stand-in for any
    # hook that chains collectives): training runs, replicas stay identical.
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 4))

    def twice(state, bucket):
        fut = dist.all_reduce(bucket.buffer().div_(world), async_op=True).get_future()

        def again(fut):
            tensor = fut.value()[0]
            copy = tensor.clone()
            dist.all_reduce(copy)  # every rank holds the same average: the sum is world times it
            return copy.div_(world)
        return fut.then(again)

    model.register_comm_hook(None, twice)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(4):
        optimizer.zero_grad()
        g = torch.Generator().manual_seed(step * 10 + rank)
        model(torch.randn(4, 8, generator=g)).sum().backward()
        optimizer.step()
    sums = [None] * world
    dist.all_gather_object(sums, [p.sum().item() for p in model.parameters()])
    if any(s != sums[0] for s in sums):
        failures.append(f"DDP replicas differ: {sums}")
    dist.destroy_process_group()
    return failures


def then_timeout(rank, world):
    import time
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    dist.init_process_group("silk", timeout=timedelta(seconds=NESTED_TIMEOUT_S))
    store = dist.distributed_c10d._get_default_store()
    failures = []
    fut = dist.all_reduce(torch.ones(100), async_op=True).get_future()
    if rank == 1:
        fut.wait()
        store.wait(["rank0_done"], timedelta(seconds=60))  # never joins the nested one
        store.set("rank1_done", "1")
    else:
        start = time.monotonic()
        try:
            nested = lambda f: dist.all_reduce(f.value()[0][:50] * 2, async_op=True).get_future().wait()[0]  # noqa: E731
            fut.then(nested).wait()
            failures.append("the chain completed although rank 1 never joined its nested all-reduce")
        except RuntimeError as e:
            elapsed = time.monotonic() - start
            print(f"rank 0 raised after {elapsed:.1f} s: {e}", flush=True)
            message = str(e)
            if "DEADLINE_EXCEEDED" not in message or "allreduce(count=50" not in message:
                failures.append("the error does not name the timeout and the nested operation")
            if elapsed > NESTED_TIMEOUT_S + 20:
                failures.append(f"the timeout fired after {elapsed:.1f} s, not about {NESTED_TIMEOUT_S} s")
        store.set("rank0_done", "1")
        store.wait(["rank1_done"], timedelta(seconds=30))  # rank 0 hosts the store: leave last
    dist.destroy_process_group()
    return failures


def worker(scenario):
    launch.mpi_environment()
    import torch

    torch.set_num_threads(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    import silk.torch  # noqa: F401

    if scenario in ("powersgd", "batched_powersgd"):
        failures = powersgd(rank, world, batched=scenario == "batched_powersgd")
    elif scenario == "then_chain":
        failures = then_chain(rank, world)
    else:
        failures = then_timeout(rank, world)
    for failure in failures:
        print(f"rank {rank}: FAILED: {failure}", flush=True)
    if not failures:
        print(f"rank {rank}: {scenario} OK", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(SCENARIOS)}}}")
    sys.exit(worker(sys.argv[1]) if "--rank" in sys.argv else driver(sys.argv[1]))
