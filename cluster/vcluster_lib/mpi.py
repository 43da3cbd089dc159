"""`vcluster run`: OpenMPI's mpirun across the virtual nodes."""

import os
import signal
import subprocess

from .common import HOSTFILE, LAUNCH_AGENT, VclusterError, in_netns
from .topology import NODE_IFNAME


def write_hostfile(topology):
    with open(HOSTFILE, "w") as f:
        for node in topology.nodes():
            f.write(f"{node.name} slots={node.slots}\n")


def mpirun_command(topology, user_args):
    first = topology.nodes()[0]
    mpirun = [
        "mpirun", "--hostfile", HOSTFILE,
        # Log into a virtual node the way ssh would log into a host.
        "--mca", "plm_rsh_agent", LAUNCH_AGENT,
        "--mca", "plm_rsh_no_tree_spawn", "1",
        # Virtual nodes share /tmp and the kernel: no shared-memory transport between them.
        "--mca", "btl", "tcp,self",
        "--mca", "btl_tcp_if_include", NODE_IFNAME,
        "--mca", "oob_tcp_if_include", NODE_IFNAME,
        "--bind-to", "none",
        "-x", f"SILK_CLUSTER_SPEC={topology.spec_path}",
        "-x", f"SILK_SOCKET_IFNAME={NODE_IFNAME}",
    ]
    # A sanitizer build's settings, and the test suite's lock-order checks, reach
    # the ranks as they reach local processes.
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_PRELOAD", "SILK_MUTEX_DEADLOCK_CHECKS"):
        if os.environ.get(name):
            mpirun += ["-x", name]
    mpirun += list(user_args)
    # mpirun itself runs on the first node, under that node's host name.
    return in_netns(first.netns, ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"',
                                  first.name] + mpirun)


def run_mpi(topology, user_args, timeout_s):
    """Runs mpirun with the caller's stdout/stderr; returns mpirun's exit status (124 on timeout)."""
    if not user_args:
        raise VclusterError("usage: vcluster run [--timeout S] -- <mpirun arguments>, e.g. -- -np 8 hostname")
    write_hostfile(topology)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               SILK_CLUSTER_SPEC=topology.spec_path)
    process = subprocess.Popen(mpirun_command(topology, user_args), env=env, start_new_session=True)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        print(f"vcluster: mpirun ran over {timeout_s}s; stopping it", flush=True)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return 124
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGINT)
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return 130
