"""The PyTorch backend in an elastic job (SILK_ELASTIC=1): four ranks around a
silk-coordinator, rank 2 SIGKILLed mid-run; the others catch the error, call
silk.torch.reconfigure(), and finish on a group of three whose all_reduce
results follow the new membership, with dist.get_world_size() following too.

Usage: elastic_test.py   (driver; SILK_TEST_COORDINATOR names silk-coordinator)
"""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

RANKS = 4
STEPS = 12
VICTIM, VICTIM_STEP = 2, 4


def driver():
    coordinator_port, torch_port = launch.free_port(), launch.free_port()
    coordinator = subprocess.Popen([os.environ["SILK_TEST_COORDINATOR"], "--port", str(coordinator_port),
                                    "--bind", "127.0.0.1"], stdout=subprocess.PIPE, text=True)
    try:
        coordinator.stdout.readline()  # listening
        results = launch.spawn(RANKS, [os.path.abspath(__file__), "--worker"], timeout=90, extra_env={
            "SILK_ELASTIC": "1", "SILK_STORE_PORT": str(coordinator_port), "TORCH_PORT": str(torch_port),
            "SILK_ELASTIC_DEAD_AFTER": "1s", "SILK_TIMEOUT": "30s"})
    finally:
        coordinator.send_signal(signal.SIGTERM)
        coordinator.wait(timeout=10)
    ok = True
    for rank, (code, output) in enumerate(results):
        print(f"----- rank {rank} (exit code {code})\n{output.strip()}")
        expected = -signal.SIGKILL if rank == VICTIM else 0
        if code != expected:
            print(f"FAILED: rank {rank} exited with {code}, expected {expected}")
            ok = False
        if rank != VICTIM and f"member {rank}: {STEPS} steps, world 3, epoch 2" not in output:
            print(f"FAILED: rank {rank} did not finish on the shrunk group")
            ok = False
        if "Traceback" in output:
            print(f"FAILED: rank {rank} raised")
            ok = False
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


def worker():
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    import silk.torch

    rank = int(os.environ["RANK"])
    # torch's own rendezvous store is rank 0's, on its own port; Silk's elastic
    # membership lives at the coordinator (SILK_STORE_PORT), which outlives any rank.
    dist.init_process_group("silk", init_method=f"tcp://127.0.0.1:{os.environ['TORCH_PORT']}", rank=rank,
                            world_size=RANKS, timeout=timedelta(seconds=30))
    member = silk.torch.membership()["member"]
    step = 0
    while step < STEPS:
        if member == VICTIM and step == VICTIM_STEP:
            os.kill(os.getpid(), signal.SIGKILL)
        members = silk.torch.membership()["members"]
        t = torch.full((1000,), float(member + 1))
        try:
            dist.all_reduce(t)
        except RuntimeError as error:
            print(f"member {member}: step {step} failed: {str(error)[:160]}", flush=True)
            change = silk.torch.reconfigure()
            print(f"member {member}: epoch {change.epoch}, lost {change.lost}, {change.seconds:.2f} s", flush=True)
            continue
        expected = float(sum(m + 1 for m in members))
        assert torch.all(t == expected), (step, t[0].item(), expected)
        step += 1
    print(f"member {member}: {STEPS} steps, world {dist.get_world_size()}, epoch {silk.torch.membership()['epoch']}",
          flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(worker() if "--worker" in sys.argv else driver())
