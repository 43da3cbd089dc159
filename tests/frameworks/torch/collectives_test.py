"""The "silk" backend's collectives against the same calls on PyTorch's gloo.

Run without arguments: launches itself on 3 ranks under mpirun. Each rank
makes two process groups -- gloo (the default group) and silk -- issues every
collective on both with the same deterministic inputs, for every CPU dtype
that maps to Silk, and compares: exactly for integers, bool, min/max and data
movement; within float tolerance for float sums, products and averages. Where
gloo lacks a dtype or op (AVG, bfloat16, reduce-scatter in 1.13, ...), the
reference is computed with gloo in a wider type, or locally from the inputs
(every rank can regenerate every rank's input).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

RANKS = 3


def driver():
    code, output = launch.mpirun(RANKS, [os.path.abspath(__file__), "--rank"], timeout=180)
    print(output)
    if code != 0:
        print(f"FAILED: mpirun exited with {code}")
        return 1
    if output.count("collectives OK") != RANKS:
        print("FAILED: not every rank reported success")
        return 1
    print("PASSED")
    return 0


def worker():
    launch.mpi_environment()
    import warnings
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    import silk.torch  # noqa: F401

    warnings.filterwarnings("ignore", message=".*(deprecated|private function).*")
    R = dist.ReduceOp
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    silk_group = dist.new_group(backend="silk", timeout=timedelta(seconds=60))
    torch.set_num_threads(1)

    dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int32,
              torch.int64, torch.bool]
    ops = {"SUM": R.SUM, "PRODUCT": R.PRODUCT, "MIN": R.MIN, "MAX": R.MAX, "AVG": R.AVG}
    tolerance = {torch.float32: 1e-5, torch.float64: 1e-12, torch.float16: 1e-2, torch.bfloat16: 2e-2}
    failures, checks, fallbacks = [], [0], set()

    def check(name, ok, detail=""):
        checks[0] += 1
        if not ok:
            failures.append(f"{name}: {detail}")
            print(f"rank {rank}: FAIL {name}: {detail}", flush=True)

    def make(dtype, shape, seed, of_rank=None):
        r = rank if of_rank is None else of_rank
        g = torch.Generator().manual_seed(seed * 131 + r)
        if dtype.is_floating_point or dtype.is_complex:
            return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        if dtype == torch.bool:
            return torch.randint(0, 2, shape, generator=g).bool()
        if dtype == torch.uint8:
            return torch.randint(0, 6, shape, generator=g).to(dtype)
        return torch.randint(-4, 5, shape, generator=g).to(dtype)

    def close(a, b, exact):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if exact or not a.dtype.is_floating_point:
            return torch.equal(a, b)
        tol = tolerance[a.dtype]
        return torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)

    def wide(dtype):
        return torch.float64 if dtype.is_floating_point else torch.int64

    def gloo_allreduce(t, op_name):
        """gloo's all-reduce of t, in t's type when gloo has it, else in a wider one."""
        out = t.clone()
        if op_name != "AVG":
            try:
                dist.all_reduce(out, op=ops[op_name])
                return out
            except RuntimeError:
                pass
        fallbacks.add(f"allreduce {op_name} {t.dtype}")
        op = ops[op_name]
        if t.dtype == torch.bool:  # Silk's bool: SUM is or, PRODUCT is and
            op = {"SUM": R.MAX, "PRODUCT": R.MIN}.get(op_name, op)
        w = t.to(wide(t.dtype), copy=True)
        dist.all_reduce(w, op=R.SUM if op_name == "AVG" else op)
        if op_name == "AVG":
            w = w / world if w.dtype.is_floating_point else torch.div(w, world, rounding_mode="trunc")
        return w.to(t.dtype)

    # ---- all_reduce: every dtype x every reduction.
    for seed, dtype in enumerate(dtypes):
        for op_name, op in ops.items():
            name = f"all_reduce {op_name} {dtype}"
            t = make(dtype, (7, 5), seed)
            if dtype == torch.bool and op_name == "AVG":
                try:
                    dist.all_reduce(t, op=op, group=silk_group)
                    check(name, False, "no error for AVG on bool")
                except RuntimeError as e:
                    check(name, "AVG" in str(e), str(e))
                continue
            expected = gloo_allreduce(t, op_name)
            got = t.clone()
            dist.all_reduce(got, op=op, group=silk_group)
            check(name, close(got, expected, exact=op_name in ("MIN", "MAX")), f"{got}\nvs gloo\n{expected}")

    # A large one (several ring chunks), and an empty one.
    big = make(torch.float32, (300_001,), 99)
    expected = gloo_allreduce(big, "SUM")
    dist.all_reduce(big, group=silk_group)
    check("all_reduce large float32", close(big, expected, exact=False), "differs")
    empty = torch.zeros(0)
    dist.all_reduce(empty, group=silk_group)
    check("all_reduce empty", empty.numel() == 0)

    # Non-contiguous: reduced through a staging copy and written back in place.
    base = make(torch.float32, (6, 8), 50)
    view = base.t()
    expected = gloo_allreduce(view.contiguous(), "SUM")
    dist.all_reduce(view, group=silk_group)
    check("all_reduce non-contiguous", close(view, expected, exact=False) and close(base.t(), expected, exact=False),
          f"{view} vs {expected}")

    # A parameter (a leaf that requires grad), in place and through a view.
    for name, view in (("parameter", lambda p: p), ("transposed parameter", lambda p: p.t())):
        on_gloo = torch.nn.Parameter(make(torch.float32, (4, 6), 55))
        on_silk = torch.nn.Parameter(make(torch.float32, (4, 6), 55))
        dist.all_reduce(view(on_gloo))
        dist.all_reduce(view(on_silk), group=silk_group)
        check(f"all_reduce {name}", close(on_silk.detach(), on_gloo.detach(), exact=False) and on_silk.is_leaf,
              f"{on_silk} vs {on_gloo}")

    # ---- all_reduce_coalesced: one operation over several tensors.
    tensors = [make(torch.float64, (3,), 60), make(torch.float64, (4, 5), 61), make(torch.float64, (2, 2, 2), 62)]
    expected = [gloo_allreduce(t, "SUM") for t in tensors]
    dist.all_reduce_coalesced(tensors, group=silk_group)
    check("all_reduce_coalesced", all(close(a, b, exact=False) for a, b in zip(tensors, expected)), "differs")

    # ---- async, with a future chained on the work (as DDP's hooks do).
    t = make(torch.float32, (10,), 70)
    expected = gloo_allreduce(t, "SUM") * 2
    work = dist.all_reduce(t, group=silk_group, async_op=True)
    doubled = work.get_future().then(lambda fut: fut.value()[0] * 2).wait()
    work.wait()
    check("async all_reduce future", close(doubled, expected, exact=False) and work.is_completed(),
          f"{doubled} vs {expected}")

    # ---- broadcast (every dtype, plus types Silk moves as bytes), from rank 1.
    for seed, dtype in enumerate(dtypes + [torch.int16, torch.complex64]):
        t = make(dtype, (4, 3), 100 + seed)
        expected = make(dtype, (4, 3), 100 + seed, of_rank=1)
        reference = t.clone()
        try:
            dist.broadcast(reference, src=1)
            check(f"gloo broadcast {dtype} agrees with local reference", torch.equal(reference, expected))
        except RuntimeError:
            fallbacks.add(f"broadcast {dtype}")
        dist.broadcast(t, src=1, group=silk_group)
        check(f"broadcast {dtype}", torch.equal(t, expected), f"{t} vs {expected}")

    # ---- all_gather (list) and _all_gather_base.
    for seed, dtype in enumerate(dtypes + [torch.int16]):
        t = make(dtype, (5,), 200 + seed)
        expected = [make(dtype, (5,), 200 + seed, of_rank=r) for r in range(world)]
        reference = [torch.empty_like(t) for _ in range(world)]
        try:
            dist.all_gather(reference, t)
            check(f"gloo all_gather {dtype} agrees with local reference",
                  all(torch.equal(a, b) for a, b in zip(reference, expected)))
        except RuntimeError:
            fallbacks.add(f"all_gather {dtype}")
        got = [torch.empty_like(t) for _ in range(world)]
        dist.all_gather(got, t, group=silk_group)
        check(f"all_gather {dtype}", all(torch.equal(a, b) for a, b in zip(got, expected)), f"{got} vs {expected}")

        out = torch.empty(world * 5, dtype=dtype)
        dist._all_gather_base(out, t, group=silk_group)
        check(f"_all_gather_base {dtype}", torch.equal(out, torch.cat(expected)), f"{out}")

    # In place, as FSDP does it: the input is this rank's slice of the output.
    out = torch.zeros(world * 6, dtype=torch.float32)
    out.narrow(0, rank * 6, 6).copy_(make(torch.float32, (6,), 300))
    dist._all_gather_base(out, out.narrow(0, rank * 6, 6), group=silk_group)
    expected = torch.cat([make(torch.float32, (6,), 300, of_rank=r) for r in range(world)])
    check("_all_gather_base in place", torch.equal(out, expected), f"{out}")

    # ---- reduce_scatter (list) and _reduce_scatter_base: block `rank` of the all-reduce.
    for seed, dtype in enumerate(dtypes):
        for op_name in ("SUM", "MAX"):
            inputs = [make(dtype, (4,), 400 + 10 * seed + j) for j in range(world)]
            expected = gloo_allreduce(torch.cat(inputs), op_name).narrow(0, rank * 4, 4)
            out = torch.empty(4, dtype=dtype)
            dist.reduce_scatter(out, inputs, op=ops[op_name], group=silk_group)
            check(f"reduce_scatter {op_name} {dtype}", close(out, expected, exact=op_name == "MAX"),
                  f"{out} vs {expected}")
            flat = torch.cat(inputs)
            out = torch.empty(4, dtype=dtype)
            dist._reduce_scatter_base(out, flat, op=ops[op_name], group=silk_group)
            check(f"_reduce_scatter_base {op_name} {dtype}", close(out, expected, exact=op_name == "MAX"),
                  f"{out} vs {expected}")

    # ---- all_to_all_single with equal splits, and all_to_all with lists.
    for seed, dtype in enumerate(dtypes + [torch.int16]):
        t = make(dtype, (world * 2, 3), 500 + seed)
        expected = torch.cat([make(dtype, (world * 2, 3), 500 + seed, of_rank=j).chunk(world)[rank]
                              for j in range(world)])
        reference = torch.empty_like(t)
        try:
            dist.all_to_all_single(reference, t)
            check(f"gloo all_to_all_single {dtype} agrees with local reference", torch.equal(reference, expected))
        except RuntimeError:
            fallbacks.add(f"all_to_all_single {dtype}")
        out = torch.empty_like(t)
        dist.all_to_all_single(out, t, group=silk_group)
        check(f"all_to_all_single {dtype}", torch.equal(out, expected), f"{out} vs {expected}")
        out = torch.empty_like(t)
        dist.all_to_all_single(out, t, output_split_sizes=[2] * world, input_split_sizes=[2] * world, group=silk_group)
        check(f"all_to_all_single explicit equal splits {dtype}", torch.equal(out, expected), f"{out}")
    inputs = list(make(torch.float32, (world * 2, 3), 600).chunk(world))
    outputs = [torch.empty(2, 3) for _ in range(world)]
    dist.all_to_all(outputs, inputs, group=silk_group)
    expected = [make(torch.float32, (world * 2, 3), 600, of_rank=j).chunk(world)[rank] for j in range(world)]
    check("all_to_all (lists)", all(torch.equal(a, b) for a, b in zip(outputs, expected)), f"{outputs}")
    # Unequal splits (rank i sends i + j + 1 rows to rank j): Silk's Alltoallv.
    send = [rank + j + 1 for j in range(world)]
    t = make(torch.float32, (sum(send), 3), 610)
    out = torch.empty((sum(j + rank + 1 for j in range(world)), 3))
    dist.all_to_all_single(out, t, output_split_sizes=[j + rank + 1 for j in range(world)], input_split_sizes=send,
                           group=silk_group)
    expected = torch.cat([make(torch.float32, (sum(j + k + 1 for k in range(world)), 3), 610, of_rank=j)[
        sum(j + k + 1 for k in range(rank)):][:j + rank + 1] for j in range(world)])
    check("all_to_all_single unequal splits", torch.equal(out, expected), f"{out}\nvs\n{expected}")

    # ---- reduce to rank 2.
    for seed, dtype in enumerate([torch.float32, torch.int64, torch.bfloat16]):
        t = make(dtype, (9,), 700 + seed)
        reference = t.clone()
        try:
            dist.reduce(reference, dst=2)
        except RuntimeError:
            fallbacks.add(f"reduce {dtype}")
            reference = gloo_allreduce(t, "SUM")
        dist.reduce(t, dst=2, group=silk_group)
        if rank == 2:
            check(f"reduce {dtype}", close(t, reference, exact=False), f"{t} vs {reference}")

    # ---- several all-reduces in flight: those on disjoint tensors may overlap
    # on the engine (may_overlap); those sharing memory with one in flight, or
    # issued behind another kind of operation, must act as if run in order.
    n = 1 << 20
    scale = sum(r + 1 for r in range(world))
    disjoint = [torch.arange(n, dtype=torch.int64) * (rank + 1) + k for k in range(6)]
    works = [dist.all_reduce(t, group=silk_group, async_op=True) for t in disjoint]
    base = torch.arange(n, dtype=torch.int64) * (rank + 1)
    works.append(dist.all_reduce(base[:n // 2], group=silk_group, async_op=True))
    works.append(dist.all_reduce(base[n // 4:], group=silk_group, async_op=True))  # overlaps the one before
    twice = torch.full((n,), rank + 1, dtype=torch.int64)
    works += [dist.all_reduce(twice, group=silk_group, async_op=True) for _ in range(2)]
    after = torch.full((n,), rank + 1, dtype=torch.int64)
    works.append(dist.broadcast(after, src=1, group=silk_group, async_op=True))
    works.append(dist.all_reduce(after, group=silk_group, async_op=True))  # behind a broadcast of it
    for w in works:
        w.wait()
    i = torch.arange(n, dtype=torch.int64)
    check("disjoint all-reduces in flight at once",
          all(torch.equal(t, i * scale + k * world) for k, t in enumerate(disjoint)))
    expected = torch.where(i < n // 4, i * scale, torch.where(i < n // 2, i * scale * world, i * scale))
    check("overlapping views of one storage, in issue order", torch.equal(base, expected),
          f"{(base != expected).sum().item()} elements differ")
    check("one tensor all-reduced twice in flight", bool((twice == scale * world).all()), f"{twice[:4]}")
    check("an all-reduce behind a broadcast of the same tensor", bool((after == 2 * world).all()), f"{after[:4]}")

    # ---- barrier, backend name, errors raised at the call.
    def broadcast_from(root):
        options = dist.BroadcastOptions()
        options.rootRank = root
        silk_group.broadcast([torch.zeros(3)], options).wait()

    dist.barrier(group=silk_group)
    check("backend name", dist.get_backend(silk_group) == "silk", dist.get_backend(silk_group))
    for name, call, needle in [
        ("int16 all_reduce raises", lambda: dist.all_reduce(torch.zeros(3, dtype=torch.int16), group=silk_group), "int16"),
        ("BAND raises", lambda: dist.all_reduce(torch.zeros(3, dtype=torch.int32), op=R.BAND, group=silk_group), "BAND"),
        ("broadcast from a rank out of range raises", lambda: broadcast_from(world + 1), "root"),
    ]:
        try:
            call()
            check(name, False, "no error")
        except (RuntimeError, ValueError) as e:
            check(name, needle in str(e), str(e))
    # The group is still healthy after those.
    t = make(torch.int32, (4,), 800)
    expected = gloo_allreduce(t, "SUM")
    dist.all_reduce(t, group=silk_group)
    check("healthy after argument errors", torch.equal(t, expected), f"{t}")

    # ---- a second silk group, over ranks 0 and 2 only (rank 1 is not a member).
    pair = dist.new_group(ranks=[0, 2], backend="silk", timeout=timedelta(seconds=60))
    if rank in (0, 2):
        t = make(torch.int64, (5,), 900)
        dist.all_reduce(t, group=pair)
        expected = make(torch.int64, (5,), 900, of_rank=0) + make(torch.int64, (5,), 900, of_rank=2)
        check("subgroup [0, 2] all_reduce", torch.equal(t, expected), f"{t} vs {expected}")
        check("subgroup size", dist.get_world_size(pair) == 2)
    dist.barrier(group=silk_group)

    print(f"rank {rank}: {checks[0]} checks, {len(failures)} failures; references not on gloo natively: "
          f"{', '.join(sorted(fallbacks)) or 'none'}", flush=True)
    # The silk groups close (with their goodbye); the gloo default group is
    # left to os._exit, as at the end of examples/pytorch/train_ddp.py (PyTorch
    # 1.13's ProcessGroupGloo can deadlock in its destructor).
    if rank in (0, 2):
        dist.destroy_process_group(pair)
    dist.destroy_process_group(silk_group)
    dist.barrier()
    if not failures:
        print(f"rank {rank}: collectives OK", flush=True)
    sys.stdout.flush()
    os._exit(1 if failures else 0)


if __name__ == "__main__":
    sys.exit(worker() if "--rank" in sys.argv else driver())
