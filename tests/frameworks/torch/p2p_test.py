"""The "silk" backend's point-to-point calls, gather, scatter and all-to-all
with unequal splits, against PyTorch's gloo in the same processes.

Run without arguments: launches itself on 3 ranks under mpirun. Each rank has
a gloo default group and a silk group, makes every call on both with the same
inputs, and compares the results exactly (they only move bytes): send/recv
and isend/irecv for every dtype and several tags, batch_isend_irecv with both
neighbours, gather and scatter from every root, all_to_all_single with and
without unequal splits (mixture-of-experts style), all_to_all with lists of
unequal tensors; a recv without a source raises.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

RANKS = 3


def check_traces(prefix):
    """SILK_TRACE: every rank's file parses and holds the operations it ran."""
    import json
    for rank in range(RANKS):
        with open(f"{prefix}.rank{rank}.json") as f:
            trace = json.load(f)
        events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
        names = {e["name"] for e in events}
        for name in ("allreduce", "alltoall", "alltoallv", "gather", "scatter", "sendrecv"):
            if name not in names:
                return f"rank {rank}'s trace has no {name} event (has {sorted(names)})"
        allreduce = next(e for e in events if e["name"] == "allreduce")
        # The shared-memory slots (SILK_FAST_PATH, issue 21) move bytes without
        # transport requests, and neither the trace nor the counters count them yet.
        counted = allreduce["args"]["plan"] == "shm-slots" or allreduce["args"]["bytes_sent"] > 0
        if not allreduce["args"]["plan"] or not counted or allreduce["dur"] < 0:
            return f"rank {rank}'s all-reduce event lacks its plan or bytes: {allreduce}"
        if not any(e["cat"] == "tier" and e["name"] == "node traffic" and e["args"]["bytes_sent"] > 0
                   for e in events):
            return f"rank {rank}'s trace has no node-tier phase"
        if not any(e["cat"] == "point-to-point" for e in events):
            return f"rank {rank}'s trace has no point-to-point event"
    return None


def driver():
    import tempfile
    with tempfile.TemporaryDirectory() as scratch:
        prefix = os.path.join(scratch, "trace")
        code, output = launch.mpirun(RANKS, [os.path.abspath(__file__), "--rank"], timeout=180,
                                     extra_env={"SILK_TRACE": prefix})
        print(output)
        if code != 0:
            print(f"FAILED: mpirun exited with {code}")
            return 1
        if output.count("p2p OK") != RANKS:
            print("FAILED: not every rank reported success")
            return 1
        problem = check_traces(prefix)
        if problem:
            print(f"FAILED: {problem}")
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
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    import time
    started = time.perf_counter()
    silk_group = dist.new_group(backend="silk", timeout=timedelta(seconds=60))  # connects: no silk group yet
    fresh_s = time.perf_counter() - started
    torch.set_num_threads(1)
    dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16,
              torch.int32, torch.int64, torch.bool]
    failures, checks = [], [0]

    def check(name, ok, detail=""):
        checks[0] += 1
        if not ok:
            failures.append(f"{name}: {detail}")
            print(f"rank {rank}: FAIL {name}: {detail}", flush=True)

    def make(dtype, shape, seed, of_rank=None):
        r = rank if of_rank is None else of_rank
        g = torch.Generator().manual_seed(seed * 131 + r)
        if dtype.is_floating_point:
            return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        if dtype == torch.bool:
            return torch.randint(0, 2, shape, generator=g).bool()
        return torch.randint(0, 100, shape, generator=g).to(dtype)

    gloo_lacks = set()

    def equal(a, b):
        return len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))

    def both(name, call, reference):
        """call(group) -> result tensors: silk's must equal the reference
        computed locally, and gloo's where gloo has the call for the dtype."""
        try:
            ours = call(silk_group)
        except RuntimeError as e:
            check(name, False, f"raised {e}")
            return
        check(name, equal(ours, reference()), f"silk {ours} vs expected {reference()}")
        try:
            gloo = call(None)
        except RuntimeError:
            gloo_lacks.add(name.split(" root")[0])
            return
        check(name + " vs gloo", equal(ours, gloo), f"silk {ours} vs gloo {gloo}")

    right, left = (rank + 1) % world, (rank - 1) % world

    # ---- send/recv around the ring, blocking (even ranks send first) and async, every dtype.
    for seed, dtype in enumerate(dtypes):
        def ring(group, dtype=dtype, seed=seed):
            out, got = make(dtype, (37,), seed), torch.zeros(37, dtype=dtype)
            if rank % 2 == 0:
                dist.send(out, right, group=group, tag=seed)
                dist.recv(got, left, group=group, tag=seed)
            else:
                dist.recv(got, left, group=group, tag=seed)
                dist.send(out, right, group=group, tag=seed)
            return [got]
        both(f"send/recv {dtype}", ring, lambda dtype=dtype, seed=seed: [make(dtype, (37,), seed, left)])

        def async_ring(group, dtype=dtype, seed=seed):
            a, b = make(dtype, (3, 4), seed + 50), make(dtype, (3, 4), seed + 60)
            got_a, got_b = torch.zeros_like(a), torch.zeros_like(b)
            # Two tags, received in the opposite order of their sends.
            works = [dist.irecv(got_b, left, group=group, tag=2), dist.irecv(got_a, left, group=group, tag=1),
                     dist.isend(a, right, group=group, tag=1), dist.isend(b, right, group=group, tag=2)]
            for w in works:
                w.wait()
            return [got_a, got_b]
        both(f"isend/irecv {dtype}", async_ring, lambda dtype=dtype, seed=seed: [
            make(dtype, (3, 4), seed + 50, left), make(dtype, (3, 4), seed + 60, left)])

    # ---- batch_isend_irecv: both neighbours at once (a pipeline's exchange).
    def batch(group):
        to_right, to_left = make(torch.float32, (1000,), 7), make(torch.float32, (10,), 8)
        from_left, from_right = torch.zeros(1000), torch.zeros(10)
        ops = [dist.P2POp(dist.irecv, from_left, left, group), dist.P2POp(dist.irecv, from_right, right, group),
               dist.P2POp(dist.isend, to_right, right, group), dist.P2POp(dist.isend, to_left, left, group)]
        for w in dist.batch_isend_irecv(ops):
            w.wait()
        return [from_left, from_right]
    both("batch_isend_irecv", batch,
         lambda: [make(torch.float32, (1000,), 7, left), make(torch.float32, (10,), 8, right)])

    # ---- gather and scatter from every root, several dtypes.
    for dtype in (torch.float32, torch.int64, torch.bfloat16, torch.bool):
        for root in range(world):
            def gather(group, dtype=dtype, root=root):
                t = make(dtype, (4, 3), 20 + root)
                out = [torch.zeros_like(t) for _ in range(world)] if rank == root else None
                dist.gather(t, out, dst=root, group=group)
                return out if rank == root else [t]
            both(f"gather {dtype} root {root}", gather, lambda dtype=dtype, root=root: [
                make(dtype, (4, 3), 20 + root, r) for r in range(world)] if rank == root else [
                make(dtype, (4, 3), 20 + root)])

            def scatter(group, dtype=dtype, root=root):
                ins = [make(dtype, (5,), 30 + r) for r in range(world)] if rank == root else None
                out = torch.zeros(5, dtype=dtype)
                dist.scatter(out, ins, src=root, group=group)
                return [out]
            both(f"scatter {dtype} root {root}", scatter,
                 lambda dtype=dtype, root=root: [make(dtype, (5,), 30 + rank, root)])

    # ---- all_to_all_single: equal, and unequal splits (rank i sends i + j + 1 rows to rank j).
    for dtype in (torch.float32, torch.int32, torch.float16, torch.int16):
        def equal_splits(group, dtype=dtype):
            t = make(dtype, (world * 2, 3), 40)
            out = torch.zeros_like(t)
            dist.all_to_all_single(out, t, group=group)
            return [out]
        both(f"all_to_all_single equal {dtype}", equal_splits, lambda dtype=dtype: [torch.cat(
            [make(dtype, (world * 2, 3), 40, j)[2 * rank:2 * rank + 2] for j in range(world)])])

        def unequal(group, dtype=dtype):
            send = [rank + j + 1 for j in range(world)]
            recv = [j + rank + 1 for j in range(world)]
            t = make(dtype, (sum(send), 2), 41)
            out = torch.zeros((sum(recv), 2), dtype=dtype)
            dist.all_to_all_single(out, t, output_split_sizes=recv, input_split_sizes=send, group=group)
            return [out]
        def unequal_reference(dtype=dtype):
            blocks = []
            for j in range(world):
                start = sum(j + k + 1 for k in range(rank))
                blocks.append(make(dtype, (sum(j + k + 1 for k in range(world)), 2), 41, j)[start:start + j + rank + 1])
            return [torch.cat(blocks)]
        both(f"all_to_all_single unequal {dtype}", unequal, unequal_reference)

    def zero_splits(group):
        send = [0 if j == rank else 2 for j in range(world)]
        t = make(torch.float64, (sum(send),), 42)
        out = torch.zeros(sum(send), dtype=torch.float64)
        dist.all_to_all_single(out, t, output_split_sizes=send, input_split_sizes=send, group=group)
        return [out]
    def zero_reference():
        blocks = []
        for j in range(world):
            theirs = make(torch.float64, (2 * (world - 1),), 42, j)
            if j != rank:
                start = 2 * sum(1 for k in range(rank) if k != j)
                blocks.append(theirs[start:start + 2])
        return [torch.cat(blocks)]
    both("all_to_all_single with empty splits", zero_splits, zero_reference)

    def lists(group):
        ins = [make(torch.float32, (rank + j + 1,), 43 + j) for j in range(world)]
        outs = [torch.zeros(j + rank + 1) for j in range(world)]
        dist.all_to_all(outs, ins, group=group)
        return outs
    both("all_to_all lists of unequal tensors", lists,
         lambda: [make(torch.float32, (j + rank + 1,), 43 + rank, j) for j in range(world)])

    # ---- errors: no source; a split list that does not add up (refused on every rank alike).
    try:
        dist.recv(torch.zeros(1), group=silk_group)
        check("recv without src raises", False, "no error")
    except RuntimeError as e:
        check("recv without src raises", "source" in str(e), str(e))
    try:
        dist.all_to_all_single(torch.zeros(4), torch.zeros(4), [1] * world, [1] * world, group=silk_group)
        check("bad splits raise", False, "no error")
    except RuntimeError as e:
        check("bad splits raise", "split" in str(e), str(e))
    t = torch.ones(2)
    dist.all_reduce(t, group=silk_group)
    check("healthy after refusals", torch.equal(t, torch.full((2,), float(world))), f"{t}")
    counters = silk.torch.stats(silk_group)
    check("stats", counters["collectives"] > 20 and counters["point_to_point"] > 20 and
          counters["node_bytes_sent"] > 0 and counters["wan_bytes_sent"] == 0 and counters["failed"] == 0,
          f"{counters}")
    try:
        silk.torch.stats()  # the default group is gloo's
        check("stats of a gloo group raises", False, "no error")
    except TypeError:
        pass

    # ---- new_group through split: [0, 2] from silk_group's connections, used beside it.
    timings = {}
    for backend in ("gloo", "silk"):
        dist.barrier()
        started = time.perf_counter()
        sub = dist.new_group(ranks=[0, 2], backend=backend, timeout=timedelta(seconds=60))
        timings[backend] = time.perf_counter() - started
        if backend == "silk" and rank in (0, 2):
            whole, part = torch.full((4,), float(rank)), torch.full((4,), float(rank))
            works = [dist.all_reduce(whole, group=silk_group, async_op=True),
                     dist.all_reduce(part, group=sub, async_op=True)]
            for w in works:
                w.wait()
            check("split group beside its parent", torch.equal(part, torch.full((4,), 2.0)) and
                  torch.equal(whole, torch.full((4,), float(sum(range(world))))), f"{part} {whole}")
            a, b = torch.arange(6.0) + rank, torch.zeros(6)
            peer = 2 - rank  # torch takes global ranks
            works = [dist.isend(a, peer, group=sub), dist.irecv(b, peer, group=sub)]
            for w in works:
                w.wait()
            check("send/recv in a split group", torch.equal(b, torch.arange(6.0) + peer), f"{b}")
            dist.destroy_process_group(sub)
        elif backend == "silk":
            dist.all_reduce(torch.full((4,), float(rank)), group=silk_group)
    if rank == 0:
        print(f"new_group timing: silk fresh (connect) {fresh_s * 1000:.1f} ms, silk [0, 2] split "
              f"{timings['silk'] * 1000:.1f} ms, gloo [0, 2] {timings['gloo'] * 1000:.1f} ms", flush=True)

    print(f"rank {rank}: {checks[0]} checks, {len(failures)} failures; gloo lacks: "
          f"{', '.join(sorted(gloo_lacks)) or 'nothing'}", flush=True)
    dist.destroy_process_group(silk_group)
    silk_group = None  # the last reference: the communicator closes and writes its SILK_TRACE file
    import gc
    gc.collect()
    dist.barrier()
    if not failures:
        print(f"rank {rank}: p2p OK", flush=True)
    sys.stdout.flush()
    os._exit(1 if failures else 0)


if __name__ == "__main__":
    sys.exit(worker() if "--rank" in sys.argv else driver())
