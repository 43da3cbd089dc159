"""silk.torch.hooks against single-process reference simulations.

Run without arguments (or with ``--ranks N``): launches itself on 3 (N) ranks
under mpirun, over the silk backend. Each rank can regenerate every rank's data, so it simulates the
whole job on its own and compares its trained parameters with the simulation:

- ``delayed`` (DDP hook, plain SGD, several buckets), in both modes: step t
  applies local_t + avg_{t-1} - local_{t-1} ("corrected"), or avg_{t-1}
  ("average"; zero at step 0); and "corrected" with a local group (ranks
  0-1, and the rest), where local_t is the group's average: on 3 ranks the
  general way, on 4 (two groups of two) by region pairs
  (silk.torch.region_pairs);
- ``PeriodicAverager``: local SGD on each replica, and every `period` steps
  the averaged parameter change applied with an outer Nesterov step.
Everything is float64, so the only differences are summation order.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

def driver():
    ranks = int(sys.argv[sys.argv.index("--ranks") + 1]) if "--ranks" in sys.argv else 3
    code, output = launch.mpirun(ranks, [os.path.abspath(__file__), "--rank"], timeout=100)
    print(output)
    ok = code == 0 and output.count("hooks OK") == ranks
    print("PASSED" if ok else f"FAILED (mpirun exit code {code})")
    return 0 if ok else 1


def worker():
    launch.mpi_environment()
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    from torch import nn

    import silk.torch
    from silk.torch.hooks import DelayedState, PeriodicAverager, delayed

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    dist.init_process_group("silk", timeout=timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    failures = []

    def make_model():
        torch.manual_seed(7)
        return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))

    def batch(step, r):
        g = torch.Generator().manual_seed(1000 * step + r)
        x = torch.randn(5, 6, generator=g)
        return x, torch.sin(x.sum(1, keepdim=True))

    def loss_of(model, step, r):
        x, y = batch(step, r)
        return ((model(x) - y) ** 2).mean()

    def gradient(model, step, r):
        model.zero_grad()
        loss_of(model, step, r).backward()
        return [p.grad.clone() for p in model.parameters()]

    def compare(name, model, reference, tol=1e-10):
        worst = max((a - b).abs().max().item() for a, b in zip(model.parameters(), reference.parameters()))
        if not worst <= tol:
            failures.append(f"{name}: parameters differ from the reference by {worst}")
        print(f"rank {rank}: {name}: max difference from the reference {worst:.3g}", flush=True)

    lr, steps = 0.1, 7

    # ---- delayed, through DDP with small buckets: one bucket at step 0, then
    # DDP rebuilds them as two, in another order (the hook must re-slice).
    # With a local group (ranks 0-1 and the rest): the fresh term is the group's average.
    members = [list(range(min(2, world))), list(range(2, world))]
    groups = [dist.new_group(m) if m else None for m in members]
    mine = 0 if rank < 2 else 1
    for mode, local_group in [(m, None) for m in DelayedState.MODES] + [("corrected", groups[mine])]:
        name = f"{mode}{', local group' if local_group is not None else ''}"
        model = make_model()
        first_bucket_bytes = getattr(dist, "_DEFAULT_FIRST_BUCKET_BYTES", None)
        dist._DEFAULT_FIRST_BUCKET_BYTES = 256
        ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.0005)
        if first_bucket_bytes is not None:
            dist._DEFAULT_FIRST_BUCKET_BYTES = first_bucket_bytes
        state = DelayedState(mode=mode, local_group=local_group)
        if (state._pairs is not None) != (local_group is not None and world == 4):
            failures.append(f"delayed ({name}): by region pairs {state._pairs is not None} on {world} ranks")
        ddp.register_comm_hook(state, delayed)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=lr)
        # Reference: every rank's replica (they differ in mode "corrected").
        replicas = [make_model() for _ in range(world)]
        previous_local = previous_average = None
        for step in range(steps):
            optimizer.zero_grad()
            loss_of(ddp, step, rank).backward()
            optimizer.step()
            local = [gradient(replica, step, r) for r, replica in enumerate(replicas)]
            average = [sum(g[i] for g in local) / world for i in range(len(local[0]))]
            if local_group is not None:
                local = [[sum(local[q][i] for q in members[0 if r < 2 else 1]) / len(members[0 if r < 2 else 1])
                          for i in range(len(local[0]))] for r in range(world)]
            with torch.no_grad():
                for r, replica in enumerate(replicas):
                    for i, p in enumerate(replica.parameters()):
                        if mode == "average":
                            applied = previous_average[i] if previous_average else torch.zeros_like(p)
                        else:
                            applied = local[r][i] + (previous_average[i] - previous_local[r][i]
                                                     if previous_average else 0)
                        p.sub_(lr * applied)
            previous_local, previous_average = local, average
        state.drain()
        compare(f"delayed ({name})", model, replicas[rank])
        if state.steps != steps:
            failures.append(f"delayed ({name}): the state counted {state.steps} steps, expected {steps}")

    # ---- PeriodicAverager: local SGD, outer Nesterov step every `period` steps.
    period, outer_lr, mu = 3, 0.7, 0.9

    def apply_outer(pending, anchor, velocity, replicas):
        """The outer Nesterov step; each replica's progress since `starts` kept on the new anchor."""
        deltas, starts = pending
        for i, a in enumerate(anchor.parameters()):
            velocity[i].mul_(mu).add_(deltas[i])
            a.sub_(outer_lr * (deltas[i] + mu * velocity[i]))
        for replica, start in zip(replicas, starts):
            for p, s0, a in zip(replica.parameters(), start, anchor.parameters()):
                p.copy_(p - s0 + a)

    # overlap: the outer step lands one step late, each replica's progress meanwhile kept on the new anchor.
    for overlap, total in [(False, 6), (False, 7), (True, 6), (True, 7)]:  # ends on a synchronisation, and after
        model = make_model()
        with torch.no_grad():  # differing starts: the averager must broadcast rank 0's
            for p in model.parameters():
                p.add_(rank)
        averager = PeriodicAverager(model, period=period, outer_lr=outer_lr, momentum=mu, overlap=overlap)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        pending = None  # (outer gradients, each replica's parameters when the exchange started)
        replicas = [make_model() for _ in range(world)]
        anchor = make_model()
        velocity = [torch.zeros_like(p) for p in anchor.parameters()]
        synced = 0
        for step in range(total):
            optimizer.zero_grad()
            loss_of(model, step, rank).backward()
            optimizer.step()
            synced += averager.step()
            grads = [gradient(replica, step, r) for r, replica in enumerate(replicas)]
            with torch.no_grad():
                for replica, replica_grads in zip(replicas, grads):
                    for p, g in zip(replica.parameters(), replica_grads):
                        p.sub_(lr * g)
                if pending is not None:
                    apply_outer(pending, anchor, velocity, replicas)
                    pending = None
                if (step + 1) % period == 0:
                    pending = ([sum(a - list(rep.parameters())[i] for rep in replicas) / world
                                for i, a in enumerate(anchor.parameters())],
                               [[p.clone() for p in rep.parameters()] for rep in replicas])
                    if not overlap:
                        apply_outer(pending, anchor, velocity, replicas)
                        pending = None
        if overlap:
            averager.flush()
            if pending is not None:
                with torch.no_grad():
                    apply_outer(pending, anchor, velocity, replicas)
        compare(f"periodic ({total} steps{', overlap' if overlap else ''})", model, replicas[rank])
        checksums = [None] * world
        dist.all_gather_object(checksums, [p.sum().item() for p in model.parameters()])
        if total % period == 0 and any(c != checksums[0] for c in checksums):
            failures.append(f"periodic: replicas differ right after a synchronisation: {checksums}")

    dist.destroy_process_group()
    for failure in failures:
        print(f"rank {rank}: FAILED: {failure}", flush=True)
    if not failures:
        print(f"rank {rank}: hooks OK", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(worker() if "--rank" in sys.argv else driver())
