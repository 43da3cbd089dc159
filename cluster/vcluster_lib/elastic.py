"""`vcluster run --elastic`: an elastic launch on the virtual cluster, without mpirun.

One coordinator (`silk-coordinator`, Silk's TCP store as a process of its own)
runs in the network namespace of the home region's first node; N rank
processes run in their nodes' namespaces, each under its node's host name,
placed as `mpirun --hostfile` places them (each node's slots filled in order).
A rank that dies with a non-zero status or a signal is started again after a
delay, as the same member with the next incarnation; the others keep running.

ElasticJob is what `cluster/chaos` drives: kill a member or a region, hold a
member's restart until told, poll, stop. Every wait is bounded; stop() ends
every process group it started.
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time

from .common import VclusterError, build_dir, in_netns
from .topology import NODE_IFNAME

DEFAULT_PORT = 29400
READY_TEXT = "silk-coordinator: listening on"
PASSED_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_PRELOAD", "SILK_MUTEX_DEADLOCK_CHECKS")


def place(topology, ranks):
    """Nodes of ranks 0..ranks-1, each node's slots filled in order (mpirun --hostfile's default mapping)."""
    slots = [node for node in topology.nodes() for _ in range(node.slots)]
    if ranks < 1:
        raise VclusterError("-np must be at least 1")
    if ranks > len(slots):
        raise VclusterError(f"-np {ranks} is more than the {len(slots)} slots of the virtual nodes "
                            f"({', '.join(f'{n.name}={n.slots}' for n in topology.nodes())})")
    return slots[:ranks]


def parse_run_args(args):
    """mpirun-style arguments of `run --elastic`: -np N, -x VAR[=value], then the program. Returns (n, env, argv)."""
    ranks, env, i = None, {}, 0
    while i < len(args):
        arg = args[i]
        if arg in ("-np", "-n", "--np") and i + 1 < len(args):
            try:
                ranks = int(args[i + 1])
            except ValueError:
                raise VclusterError(f"{arg} needs a number, not {args[i + 1]!r}")
            i += 2
        elif arg == "-x" and i + 1 < len(args):
            name, equals, value = args[i + 1].partition("=")
            if not equals and name not in os.environ:
                raise VclusterError(f"-x {name}: {name} is not set here (give -x {name}=VALUE)")
            env[name] = value if equals else os.environ[name]
            i += 2
        elif arg.startswith("-"):
            raise VclusterError(f"run --elastic takes only -np N and -x VAR[=value] before the program, not {arg!r} "
                                "(the ranks are started directly, not by mpirun)")
        else:
            break
    if ranks is None or i >= len(args):
        raise VclusterError("usage: vcluster run --elastic -- -np N [-x VAR[=value]] PROGRAM [ARGS...]")
    return ranks, env, list(args[i:])


class Member:
    """One rank of the job: stable id, its node, the incarnation now running (or last run)."""

    def __init__(self, member_id, node):
        self.id = member_id
        self.node = node
        self.incarnation = -1
        self.process = None
        self.started_at = None
        self.held = False          # do not restart until release()
        self.restart_at = None     # time.time() of the next start, None: none due
        self.exits = []            # (time, incarnation, returncode)
        self.done = False          # exited 0, or gave up for good
        self.abandoned = False     # was down when every other member had finished: not restarted

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None


def describe_status(code):
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


class ElasticJob:
    """Coordinator plus N ranks on the virtual cluster (netns=True), or as plain local processes (netns=False, for
    tests without root). `say` receives the launcher's own lines (restarts, exits)."""

    def __init__(self, topology, program, ranks, env=None, restart_delay=5.0, restart=True, home_region=None,
                 port=DEFAULT_PORT, max_restarts=20, netns=True, coordinator=None, prefix_output=True,
                 output=None, say=None):
        self.topology = topology
        self.program = list(program)
        self.nodes = place(topology, ranks)
        self.extra_env = dict(env or {})
        self.restart_delay = restart_delay
        self.restart = restart
        self.home = topology.region(home_region) if home_region else topology.regions[0]
        self.port = port
        self.max_restarts = max_restarts
        self.netns = netns
        # coordinator: the binary's path; None: build/runtime/silk-coordinator; False: none (tests of the launcher)
        self.coordinator_binary = os.path.join(build_dir(), "runtime", "silk-coordinator") if coordinator is None \
            else coordinator
        self.prefix_output = prefix_output
        self.output = output or sys.stdout
        self.say = say or (lambda line: print(f"vcluster: {line}", file=sys.stderr, flush=True))
        self.members = [Member(i, node) for i, node in enumerate(self.nodes)]
        self.coordinator = None
        self.coordinator_node = self.home.nodes[0]
        self.token = os.environ.get("SILK_JOB_TOKEN") or self.extra_env.get("SILK_JOB_TOKEN") or secrets.token_hex(32)
        self.restarts = []         # (time, member, incarnation, previous status) of every restart
        self.finished = False
        self._readers = []
        self._write_lock = threading.Lock()
        self._coordinator_lines = []

    # -- processes --------------------------------------------------------------------------------------------------

    def _wrap(self, node, argv):
        if not self.netns:
            return list(argv)
        return in_netns(node.netns, ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"',
                                     node.name] + list(argv))

    def _pipe(self, stream, prefix, keep=None):
        def copy():
            for line in iter(stream.readline, ""):
                if keep is not None:
                    keep.append(line)
                with self._write_lock:
                    try:
                        self.output.write(prefix + line if self.prefix_output else line)
                        self.output.flush()
                    except (OSError, ValueError):
                        pass
            stream.close()
        thread = threading.Thread(target=copy, daemon=True)
        thread.start()
        self._readers.append(thread)

    def base_env(self):
        env = dict(os.environ)
        env.update(SILK_CLUSTER_SPEC=self.topology.spec_path, SILK_JOB_TOKEN=self.token)
        if self.netns:
            env["SILK_SOCKET_IFNAME"] = NODE_IFNAME
        return env

    def rank_env(self, member):
        env = self.base_env()
        env.update(SILK_ELASTIC="1", MASTER_ADDR=self.coordinator_address(), MASTER_PORT=str(self.port),
                   RANK=str(member.id), WORLD_SIZE=str(len(self.members)),
                   SILK_ELASTIC_INCARNATION=str(member.incarnation), SILK_NODE=member.node.name,
                   SILK_REGION=member.node.region)
        env.pop("TORCHELASTIC_RUN_ID", None)  # it would move the store to MASTER_PORT+1
        env.update(self.extra_env)
        return env

    def coordinator_address(self):
        return self.coordinator_node.address if self.netns else "127.0.0.1"

    def start_coordinator(self, timeout=30):
        if self.coordinator_binary is False:
            return
        if not os.access(self.coordinator_binary, os.X_OK):
            raise VclusterError(f"{self.coordinator_binary} is missing: build the target silk-coordinator "
                                "(or set SILK_BUILD_DIR)")
        argv = [self.coordinator_binary, "--port", str(self.port)]
        if self.netns:
            argv += ["--bind", self.coordinator_node.address]
        self.coordinator = subprocess.Popen(self._wrap(self.coordinator_node, argv), env=self.base_env(),
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._pipe(self.coordinator.stdout, "[coordinator] ", keep=self._coordinator_lines)
        deadline = time.monotonic() + timeout
        while not any(READY_TEXT in line for line in list(self._coordinator_lines)):
            if self.coordinator.poll() is not None:
                raise VclusterError(f"silk-coordinator exited ({describe_status(self.coordinator.returncode)}) "
                                    f"before it listened: {''.join(self._coordinator_lines[-5:]).strip()}")
            if time.monotonic() > deadline:
                raise VclusterError(f"silk-coordinator did not print '{READY_TEXT}' within {timeout}s")
            time.sleep(0.05)
        self.say(f"coordinator listening on {self.coordinator_address()}:{self.port} "
                 f"(node {self.coordinator_node.name}, region {self.home.name})")

    def _launch(self, member):
        member.incarnation += 1
        member.restart_at = None
        member.process = subprocess.Popen(self._wrap(member.node, self.program), env=self.rank_env(member),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
        member.started_at = time.time()
        self._pipe(member.process.stdout, f"[member {member.id}] ")

    def start(self):
        """Starts the coordinator, then every rank (incarnation 0)."""
        self.start_coordinator()
        for member in self.members:
            self._launch(member)
        self.say(f"started {len(self.members)} ranks: " +
                 ", ".join(f"{m.id}@{m.node.name}" for m in self.members))

    # -- control ----------------------------------------------------------------------------------------------------

    def member(self, member_id):
        return self.members[int(member_id)]

    def region_members(self, region):
        self.topology.region(region)  # names the regions when this one does not exist
        return [m for m in self.members if m.node.region == region]

    def kill(self, member_id, sig=signal.SIGKILL, hold=False):
        """Signals a member's process group. hold=True: no restart until release(member)."""
        member = self.member(member_id)
        if hold:
            member.held = True
        if member.running:
            try:
                os.killpg(member.process.pid, sig)
            except ProcessLookupError:
                pass
            return True
        return False

    def kill_region(self, region, sig=signal.SIGKILL, hold=True):
        """Kills every member placed in the region; by default they stay down until release_region()."""
        return [m.id for m in self.region_members(region) if self.kill(m.id, sig, hold=hold)]

    def hold(self, member_id):
        self.member(member_id).held = True

    def release(self, member_id, delay=0.0):
        """Lets a held member start again after `delay` seconds (at once when it is down already)."""
        member = self.member(member_id)
        member.held = False
        if not member.running and not member.done and member.process is not None:
            member.restart_at = time.time() + delay

    def release_region(self, region, delay=0.0):
        for m in self.region_members(region):
            self.release(m.id, delay)

    # -- watching ---------------------------------------------------------------------------------------------------

    def poll(self):
        """Reaps exits, schedules and performs restarts. Returns True while the job runs."""
        now = time.time()
        for member in self.members:
            process = member.process
            if process is None or member.done:
                continue
            code = process.poll()
            if code is not None and (not member.exits or member.exits[-1][1] != member.incarnation):
                member.exits.append((now, member.incarnation, code))
                if code == 0:
                    member.done = True
                    self.say(f"member {member.id} (incarnation {member.incarnation}) finished")
                elif not self.restart:
                    member.done = True
                    self.say(f"member {member.id} {describe_status(code)}; not restarted (--no-restart)")
                elif member.incarnation >= self.max_restarts:
                    member.done = True
                    self.say(f"member {member.id} {describe_status(code)}; gave up after {self.max_restarts} restarts")
                elif not member.held and member.restart_at is None:
                    member.restart_at = now + self.restart_delay
            if code is not None and not member.done and self._others_finished(member):
                member.done = member.abandoned = True
                self.say(f"member {member.id} ({describe_status(code)}) not restarted: every other member has "
                         "finished")
                continue
            if (code is not None and not member.done and not member.held and member.restart_at is not None
                    and now >= member.restart_at):
                previous = describe_status(code)
                self._launch(member)
                self.restarts.append((time.time(), member.id, member.incarnation, previous))
                self.say(f"restart: member {member.id} on {member.node.name} ({member.node.region}) "
                         f"{previous} at {time.strftime('%H:%M:%S', time.localtime(member.exits[-1][0]))}; "
                         f"incarnation {member.incarnation} started after "
                         f"{time.time() - member.exits[-1][0]:.1f} s")
        if self.coordinator is not None and self.coordinator.poll() is not None and not self.finished:
            self.say(f"the coordinator ended ({describe_status(self.coordinator.returncode)}) while the job ran")
            self.coordinator = None
        if all(m.done for m in self.members):
            self.finished = True
        return not self.finished

    def _others_finished(self, member):
        others = [m for m in self.members if m is not member]
        return bool(others) and all(m.done and m.exits and m.exits[-1][2] == 0 for m in others)

    def status(self):
        """0 when every member's last run exited 0 (or it stayed down while the others finished), else 1."""
        ok = all(m.abandoned or (m.exits and m.exits[-1][2] == 0) for m in self.members)
        return 0 if ok else 1

    def wait(self, timeout, interval=0.1):
        """Polls until the job ends or `timeout` seconds pass. Returns the job's status, 124 after the timeout."""
        deadline = time.monotonic() + timeout
        while self.poll():
            if time.monotonic() > deadline:
                self.say(f"the job ran over {timeout:g} s; stopping it")
                return 124
            time.sleep(interval)
        return self.status()

    def summary(self):
        lines = [f"{len(self.restarts)} restart(s)"]
        for at, member_id, incarnation, previous in self.restarts:
            lines.append(f"  {time.strftime('%H:%M:%S', time.localtime(at))} member {member_id} "
                         f"({self.member(member_id).node.name}) {previous}, restarted as incarnation {incarnation}")
        for m in self.members:
            last = describe_status(m.exits[-1][2]) if m.exits else describe_status(m.process.poll() if m.process
                                                                                    else None)
            lines.append(f"  member {m.id} on {m.node.name}: {m.incarnation + 1} incarnation(s), last {last}")
        return "\n".join(lines)

    def stop(self, grace=3.0):
        """Ends every rank and the coordinator (SIGTERM, then SIGKILL after `grace` seconds); bounded."""
        processes = [m.process for m in self.members if m.process is not None] + \
            ([self.coordinator] if self.coordinator is not None else [])
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            alive = [p for p in processes if p.poll() is None]
            for process in alive:
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
                time.sleep(0.05)
        for thread in self._readers:
            thread.join(timeout=1)
        self.poll_exits_only()

    def poll_exits_only(self):
        now = time.time()
        for member in self.members:
            if member.process is not None:
                code = member.process.poll()
                if code is not None and (not member.exits or member.exits[-1][1] != member.incarnation):
                    member.exits.append((now, member.incarnation, code))


def run_elastic(topology, args, timeout, restart_delay, restart, home_region, port):
    """The CLI's `run --elastic`: returns 0 when every rank finished with 0, 124 after the timeout, else 1."""
    ranks, env, program = parse_run_args(args)
    job = ElasticJob(topology, program, ranks, env=env, restart=restart, home_region=home_region,
                     restart_delay=5.0 if restart_delay is None else restart_delay, port=port or DEFAULT_PORT)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: every rank ended on the way
    status = 143
    try:
        job.start()
        status = job.wait(timeout)
    except KeyboardInterrupt:
        status = 130
    except SystemExit:  # SIGTERM
        status = 143
    finally:
        job.stop()
        signal.signal(signal.SIGTERM, previous)
    print(f"vcluster: elastic job ended with status {status}; {job.summary()}", file=sys.stderr, flush=True)
    return status
