"""Launching helpers for the PyTorch backend's tests: runs ranks as separate
processes, under mpirun or spawned directly with env:// variables, on a fresh
loopback port, and kills them all at a deadline so that nothing hangs.

Settings come from the environment CTest gives the tests:
SILK_TEST_PYTHON (the interpreter with torch), SILK_TEST_MPIEXEC (mpirun),
PYTHONPATH (the built silk package).
"""
import os
import signal
import socket
import subprocess
import sys
import time

PYTHON = os.environ.get("SILK_TEST_PYTHON", sys.executable)
MPIEXEC = os.environ.get("SILK_TEST_MPIEXEC", "mpirun")
MPI_FLAGS = ["--oversubscribe", "--bind-to", "none", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include",
             "lo", "--mca", "oob_tcp_if_include", "lo"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(process):
    """Kills `process` and everything in its session (it was started with
    start_new_session). mpirun gives each rank a process group of its own, but
    they stay in mpirun's session."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == process.pid:  # field 6 of stat, the session id
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(argv, env, timeout):
    """Runs argv in its own process group; returns (exit code, output). The
    exit code is None if it was killed at the deadline."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        return None, output + f"\n[killed after {timeout}s]"


def base_env(extra=None):
    env = dict(os.environ)
    env.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())})
    env.update(extra or {})
    return env


def mpirun(np, script_argv, timeout, extra_env=None):
    """Runs `python script args...` on `np` ranks under mpirun."""
    env = base_env(extra_env)
    exports = []
    for name in ["MASTER_ADDR", "MASTER_PORT", "PYTHONPATH"] + sorted((extra_env or {}).keys()):
        exports += ["-x", name]
    argv = [MPIEXEC] + MPI_FLAGS + ["-np", str(np)] + exports + [PYTHON] + script_argv
    return run(argv, env, timeout)


def vcluster(repo, np, script_argv, timeout):
    """Runs `python script args...` on `np` ranks across the virtual cluster's
    nodes (`cluster/vcluster run`, already up); rank 0 is on its first node."""
    first_node = "198.18.1.1"  # cluster/specs/xinjiang-chongqing.textproto
    argv = [os.path.join(repo, "cluster", "vcluster"), "run", "--timeout", str(timeout), "--",
            "-np", str(np), "-x", "PYTHONPATH", "-x", f"MASTER_ADDR={first_node}", "-x", f"MASTER_PORT={free_port()}",
            "-x", "GLOO_SOCKET_IFNAME=eth0", PYTHON] + script_argv
    return run(argv, dict(os.environ), timeout + 30)


def spawn(np, script_argv, timeout, extra_env=None):
    """Runs `python script args...` as `np` processes with RANK/WORLD_SIZE set;
    returns [(exit code or None, output)] by rank. All are killed at the deadline."""
    env = base_env(extra_env)
    processes = []
    for rank in range(np):
        rank_env = dict(env, RANK=str(rank), WORLD_SIZE=str(np), LOCAL_RANK=str(rank))
        processes.append(subprocess.Popen([PYTHON] + script_argv, env=rank_env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, start_new_session=True))
    deadline = time.monotonic() + timeout
    results = []
    for process in processes:
        try:
            output, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            results.append((process.returncode, output))
        except subprocess.TimeoutExpired:
            _kill_group(process)
            output, _ = process.communicate()
            results.append((None, output + f"\n[killed after {timeout}s]"))
    return results


def mpi_environment():
    """In a rank under mpirun: fills RANK/WORLD_SIZE/LOCAL_RANK from OpenMPI's variables."""
    for source, target in (("OMPI_COMM_WORLD_RANK", "RANK"), ("OMPI_COMM_WORLD_SIZE", "WORLD_SIZE"),
                           ("OMPI_COMM_WORLD_LOCAL_RANK", "LOCAL_RANK")):
        if source in os.environ:
            os.environ.setdefault(target, os.environ[source])
