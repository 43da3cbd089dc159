"""Failures reach Python as exceptions carrying Silk's message.

Usage: errors_test.py SCENARIO, where SCENARIO is
  peer_death -- rank 2 of 3 exits after the first all-reduce; ranks 0 and 1
                get an exception naming rank 2 from their next one;
  timeout    -- rank 1 of 2 skips an all-reduce; rank 0's times out;
  mismatch   -- rank 1 of 3 all-reduces a different size; every rank's call
                raises, mentioning the mismatch;
  refused_on_one_rank -- rank 0 of 3 passes a tensor Silk refuses (a sparse
                one); its call raises at once, and the others' valid call
                raises too, naming the refused call, instead of pairing with
                rank 0's next all-reduce (which also raises);
  ddp_peer_death -- rank 1 of 3 dies during DDP training; the others'
                backward() raises through DDP's future, naming rank 1;
  exit_in_flight -- 2 ranks leave the interpreter with an all-reduce in
                flight and a Python callback chained on its future, without
                destroying the group: both exit cleanly.
No rank's output may show a crash (FORBIDDEN).
The ranks are spawned as separate processes (env:// launch); every one is
killed at a deadline, so a hang fails the test instead of blocking it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

TIMEOUT_S = 8  # the process group's timeout (Silk's per-operation timeout)

# scenario -> (ranks, {rank: what its output must contain}, {rank: exit code})
SCENARIOS = {
    "peer_death": (3, {0: ["raised:", "rank 2"], 1: ["raised:", "rank 2"]}, {0: 0, 1: 0, 2: 17}),
    "timeout": (2, {0: ["raised:", "timed out"]}, {0: 0, 1: 0}),
    "mismatch": (3, {r: ["raised:", "mismatch"] for r in range(3)}, {0: 0, 1: 0, 2: 0}),
    "refused_on_one_rank": (3, {0: ["raised:", "dense", "next raised:"],
                                1: ["raised:", "rejected by its rank"], 2: ["raised:", "rejected by its rank"]},
                            {0: 0, 1: 0, 2: 0}),
    "ddp_peer_death": (3, {0: ["raised:", "rank 1"], 2: ["raised:", "rank 1"]}, {0: 0, 1: 17, 2: 0}),
    "exit_in_flight": (2, {0: ["leaving"], 1: ["leaving"]}, {0: 0, 1: 0}),
}
FORBIDDEN = ["terminate called", "Segmentation fault", "Sanitizer", "Traceback"]


def driver(scenario):
    ranks, needles, codes = SCENARIOS[scenario]
    results = launch.spawn(ranks, [os.path.abspath(__file__), scenario, "--rank"], timeout=90)
    ok = True
    for rank, (code, output) in enumerate(results):
        print(f"----- rank {rank} (exit code {code})\n{output.strip()}")
        if code != codes[rank]:
            print(f"FAILED: rank {rank} exited with {code}, expected {codes[rank]}")
            ok = False
        for needle in needles.get(rank, []):
            if needle not in output:
                print(f"FAILED: rank {rank}'s output lacks {needle!r}")
                ok = False
        for needle in FORBIDDEN:
            if needle in output:
                print(f"FAILED: rank {rank}'s output shows {needle!r}")
                ok = False
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


def worker(scenario):
    import time
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    import silk.torch  # noqa: F401

    dist.init_process_group("silk", timeout=timedelta(seconds=TIMEOUT_S))
    rank = dist.get_rank()
    store = dist.distributed_c10d._get_default_store()
    t = torch.ones(1000)
    dist.all_reduce(t)  # everyone is connected and healthy
    print(f"rank {rank}: first all_reduce OK ({t[0].item()})", flush=True)
    # Every rank has finished it (a rank's part of a collective can end before
    # another's): only then start the failure, so it hits the next operation.
    store.add("healthy", 1)
    deadline = time.monotonic() + 30
    while store.add("healthy", 0) < dist.get_world_size() and time.monotonic() < deadline:
        time.sleep(0.01)

    def expect_failure(call):
        try:
            call()
        except RuntimeError as e:
            print(f"rank {rank} raised: {e}", flush=True)
            return True
        print(f"rank {rank}: no exception", flush=True)
        return False

    def finish(ok, leave_last=False):
        if leave_last:  # every rank reports; rank 0 hosts the store, so it leaves last
            store.add("done", 1)
            deadline = time.monotonic() + 30
            while rank == 0 and store.add("done", 0) < dist.get_world_size() and time.monotonic() < deadline:
                time.sleep(0.05)
        dist.destroy_process_group()  # must not hang after a failure either
        return 0 if ok else 1

    if scenario == "peer_death":
        if rank == 2:
            os._exit(17)  # no goodbye: the process just disappears
        return finish(expect_failure(lambda: [dist.all_reduce(torch.ones(1000)) for _ in range(100)]))

    if scenario == "timeout":
        if rank == 1:
            # Skip the collective; stay alive until rank 0 has seen its timeout.
            store.wait(["rank0_done"], timedelta(seconds=60))
            store.set("rank1_done", "1")
            return finish(True)
        ok = expect_failure(lambda: dist.all_reduce(torch.ones(1000)))
        store.set("rank0_done", "1")
        store.wait(["rank1_done"], timedelta(seconds=30))  # rank 0 hosts the store: leave last
        return finish(ok)

    if scenario == "mismatch":
        ok = expect_failure(lambda: dist.all_reduce(torch.ones(2000 if rank == 1 else 1000)))
        return finish(ok, leave_last=True)

    if scenario == "refused_on_one_rank":
        if rank == 0:
            ok = expect_failure(lambda: dist.all_reduce(torch.ones(1000).to_sparse()))
            try:
                dist.all_reduce(torch.ones(1000))
                print(f"rank {rank}: its next all_reduce paired with the others' call", flush=True)
                ok = False
            except RuntimeError as e:
                print(f"rank {rank} next raised: {e}", flush=True)
        else:
            ok = expect_failure(lambda: dist.all_reduce(torch.ones(1000)))
        return finish(ok, leave_last=True)

    if scenario == "ddp_peer_death":
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(16, 4))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

        def train(steps):
            for step in range(steps):
                if rank == 1 and step == 3:
                    os._exit(17)
                optimizer.zero_grad()
                model(torch.randn(8, 16)).sum().backward()  # waits for DDP's all-reduce future
                optimizer.step()
        return finish(expect_failure(lambda: train(100)))

    if scenario == "exit_in_flight":
        work = dist.all_reduce(torch.ones(1_000_000), async_op=True)
        work.get_future().then(lambda fut: fut.value()[0].sum())  # runs on Silk's thread, needs the GIL
        print(f"rank {rank}: leaving", flush=True)
        return 0  # no wait, no destroy_process_group: silk.torch's atexit hook lets it finish
    return 2


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(SCENARIOS)}}}")
    sys.exit(worker(sys.argv[1]) if "--rank" in sys.argv else driver(sys.argv[1]))
