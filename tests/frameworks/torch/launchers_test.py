"""Ways of starting a job that are not plain mpirun or env://.

Usage: launchers_test.py agent_store PATH/TO/train_ddp.py
         torchrun's layout: a separate agent process hosts the TCPStore on
         MASTER_PORT and the workers join it as clients
         (TORCHELASTIC_USE_AGENT_STORE=True); 2 ranks train 3 steps.
       launchers_test.py installed BUILD_DIR PACKAGE_DIR
         `cmake --install` into a scratch prefix, then a 1-rank job imports
         silk.torch from <prefix>/PACKAGE_DIR (RPATH to the installed libsilk).
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

AGENT = """
import sys, time
from datetime import timedelta
import torch.distributed as dist
store = dist.TCPStore("127.0.0.1", int(sys.argv[1]), int(sys.argv[2]), True, timedelta(seconds=60),
                      wait_for_workers=False)
print("agent store up", flush=True)
store.wait(["workers_done"], timedelta(seconds=60))
"""

ONE_RANK = """
import torch, torch.distributed as dist
import silk.torch
assert silk.torch.__file__.startswith(PREFIX), silk.torch.__file__
dist.init_process_group("silk")
t = torch.arange(4.0)
dist.all_reduce(t)
assert torch.equal(t, torch.arange(4.0)), t
dist.destroy_process_group()
print("installed silk.torch OK", flush=True)
"""


def agent_store(script):
    ranks = 2
    env = launch.base_env()
    agent = subprocess.Popen([launch.PYTHON, "-c", AGENT, env["MASTER_PORT"], str(ranks + 1)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        agent.stdout.readline()  # "agent store up"
        results = launch.spawn(ranks, [script, "--backend", "silk", "--steps", "3"], timeout=90, extra_env={
            "MASTER_PORT": env["MASTER_PORT"], "TORCHELASTIC_USE_AGENT_STORE": "True",
            "TORCHELASTIC_RUN_ID": "silk-test", "TORCHELASTIC_RESTART_COUNT": "0"})
    finally:
        try:
            from datetime import timedelta

            import torch.distributed as dist
            dist.TCPStore("127.0.0.1", int(env["MASTER_PORT"]), ranks + 1, False, timedelta(seconds=10),
                          wait_for_workers=False).set("workers_done", "1")
        except Exception as e:  # the agent is killed below anyway
            print(f"could not release the agent: {e}")
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            launch._kill_group(agent)
            agent.wait()
    ok = True
    for rank, (code, output) in enumerate(results):
        print(f"----- rank {rank} (exit code {code})\n{output.strip()}")
        ok = ok and code == 0
    ok = ok and "median step time" in results[0][1]
    return ok


def installed(build_dir, package_dir):
    with tempfile.TemporaryDirectory() as prefix:
        code, output = launch.run(["cmake", "--install", build_dir, "--prefix", prefix], dict(os.environ), 120)
        if code != 0:
            print(output)
            return False
        env = launch.base_env({"PYTHONPATH": os.path.join(prefix, package_dir), "RANK": "0", "WORLD_SIZE": "1"})
        code, output = launch.run([launch.PYTHON, "-c", f"PREFIX = {prefix!r}\n" + ONE_RANK], env, 60)
        print(output.strip())
        return code == 0 and "installed silk.torch OK" in output


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "agent_store":
        ok = agent_store(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "installed":
        ok = installed(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
    print("PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
