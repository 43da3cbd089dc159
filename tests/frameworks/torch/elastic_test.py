"""The PyTorch backend in an elastic job (SILK_ELASTIC=1): four ranks around a
silk-coordinator, rank 2 SIGKILLed mid-run; the others catch the error, call
silk.torch.reconfigure() and go on as three, with all_reduce results and
dist.get_world_size() following the membership. Rank 2 is then started again
(as its launcher would) and joins through silk.torch.rejoin(); the members
admit it at their next agreement on join requests, hand it the state with a
broadcast, and all four finish.

Usage: elastic_test.py   (driver; SILK_TEST_COORDINATOR names silk-coordinator)
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

RANKS = 4
STEPS = 150
VICTIM, VICTIM_STEP = 2, 4
TIMEOUT_S = 90


def driver():
    coordinator_port, torch_port = launch.free_port(), launch.free_port()
    coordinator = subprocess.Popen([os.environ["SILK_TEST_COORDINATOR"], "--port", str(coordinator_port),
                                    "--bind", "127.0.0.1"], stdout=subprocess.PIPE, text=True)
    env = launch.base_env({"SILK_ELASTIC": "1", "SILK_STORE_PORT": str(coordinator_port),
                           "TORCH_PORT": str(torch_port), "SILK_ELASTIC_DEAD_AFTER": "1s", "SILK_TIMEOUT": "30s"})
    script = [launch.PYTHON, os.path.abspath(__file__), "--worker"]

    def start(rank, incarnation, extra=()):
        rank_env = dict(env, RANK=str(rank), WORLD_SIZE=str(RANKS), SILK_ELASTIC_INCARNATION=str(incarnation))
        return subprocess.Popen(script + list(extra), env=rank_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    processes = {}
    try:
        coordinator.stdout.readline()  # listening
        processes = {(rank, 0): start(rank, 0) for rank in range(RANKS)}
        deadline = time.monotonic() + TIMEOUT_S
        while processes[(VICTIM, 0)].poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the launcher's restart delay
        processes[(VICTIM, 1)] = start(VICTIM, 1, ["--rejoin"])
        results = {}
        for key, process in processes.items():
            try:
                output, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
                results[key] = (process.returncode, output)
            except subprocess.TimeoutExpired:
                launch._kill_group(process)
                output, _ = process.communicate()
                results[key] = (None, output + f"\n[killed after {TIMEOUT_S}s]")
    finally:
        for process in processes.values():
            if process.poll() is None:
                launch._kill_group(process)
        coordinator.send_signal(signal.SIGTERM)
        coordinator.wait(timeout=10)
    ok = True
    for (rank, incarnation), (code, output) in sorted(results.items()):
        print(f"----- rank {rank}, incarnation {incarnation} (exit code {code})\n{output.strip()}")
        killed = rank == VICTIM and incarnation == 0
        expected = -signal.SIGKILL if killed else 0
        if code != expected:
            print(f"FAILED: rank {rank} (incarnation {incarnation}) exited with {code}, expected {expected}")
            ok = False
        if not killed and f"member {rank}: {STEPS} steps, world 4, epoch 3" not in output:
            print(f"FAILED: rank {rank} (incarnation {incarnation}) did not finish with all four in epoch 3")
            ok = False
        if not killed and rank != VICTIM and "world 3" not in output:
            print(f"FAILED: rank {rank} never ran as a group of three")
            ok = False
        if "Traceback" in output:
            print(f"FAILED: rank {rank} raised")
            ok = False
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


def worker(rejoining):
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    import silk.torch

    rank = int(os.environ["RANK"])
    if rejoining:
        silk.torch.rejoin(timeout=timedelta(seconds=30))
    else:
        # torch's own rendezvous store is rank 0's, on its own port; Silk's elastic
        # membership lives at the coordinator (SILK_STORE_PORT), which outlives any rank.
        dist.init_process_group("silk", init_method=f"tcp://127.0.0.1:{os.environ['TORCH_PORT']}", rank=rank,
                                world_size=RANKS, timeout=timedelta(seconds=30))
    member = silk.torch.membership()["member"]

    def state(step):  # the training state here is the step counter: rank 0 of the membership holds it
        t = torch.tensor([step], dtype=torch.int64)
        dist.broadcast(t, src=0)
        return int(t.item())

    step = state(-1) if rejoining else 0
    while step < STEPS:
        if member == VICTIM and step == VICTIM_STEP and not rejoining:
            os.kill(os.getpid(), signal.SIGKILL)
        members = silk.torch.membership()["members"]
        t = torch.full((1000,), float(member + 1))
        try:
            dist.all_reduce(t)
            requests = torch.tensor([silk.torch.membership()["join_requests"]], dtype=torch.int64)
            dist.all_reduce(requests, op=dist.ReduceOp.MAX)
        except RuntimeError as error:
            print(f"member {member}: step {step} failed: {str(error)[:160]}", flush=True)
            change = silk.torch.reconfigure()
            print(f"member {member}: epoch {change.epoch}, lost {change.lost}, world {dist.get_world_size()}, "
                  f"{change.seconds:.2f} s", flush=True)
            step = state(step)
            continue
        expected = float(sum(m + 1 for m in members))
        assert torch.all(t == expected), (step, t[0].item(), expected)
        step += 1
        if int(requests.item()) > silk.torch.membership()["answered_join_requests"]:
            change = silk.torch.reconfigure(admit_up_to=int(requests.item()))
            print(f"member {member}: epoch {change.epoch}, joined {change.joined}, world {dist.get_world_size()}",
                  flush=True)
            step = state(step)
        time.sleep(0.05)
    print(f"member {member}: {STEPS} steps, world {dist.get_world_size()}, epoch {silk.torch.membership()['epoch']}",
          flush=True)
    dist.barrier()
    silk.torch.finish_job()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(worker("--rejoin" in sys.argv) if "--worker" in sys.argv else driver())
