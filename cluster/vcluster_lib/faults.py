"""A checked loop of all-reduces on the virtual cluster, with the WAN cut
for a while in the middle: what cluster/bench-faults measures and the outage
tests assert. Needs a cluster that is up (`vcluster up`)."""

import json
import os
import subprocess
import tempfile
import threading
import time

from .common import REPO, build_dir

VCLUSTER = os.path.join(REPO, "cluster", "vcluster")
OUTAGE_LOG = "no traffic from any of"  # what a rank logs when it concludes a link is down


class Run:
    """One run's facts, times in seconds since the epoch."""

    def __init__(self):
        self.returncode = None
        self.iterations = []  # {"iter", "end", "ok"} from rank 0
        self.seconds = None   # the loop's own wall time on rank 0
        self.wrong = None
        self.cut_at = self.healed_at = None
        self.lines = []       # (arrival time, line) of the ranks' output

    def first_line(self, text, after=0.0):
        return next(((t, line) for t, line in self.lines if text in line and t >= after), (None, None))

    def first_end_after(self, t):
        return next((i["end"] for i in self.iterations if i["end"] > t), None)

    def last_end_before(self, t):
        return next((i["end"] for i in reversed(self.iterations) if i["end"] < t), None)

    def median_iteration(self):
        """The median time between consecutive iterations' ends (0 with fewer than two)."""
        gaps = sorted(b["end"] - a["end"] for a, b in zip(self.iterations, self.iterations[1:]))
        return gaps[len(gaps) // 2] if gaps else 0.0

    def output(self):
        return "\n".join(line for _, line in self.lines)


def _reader(stream, run):
    for line in iter(stream.readline, ""):
        run.lines.append((time.time(), line.rstrip("\n")))


def _launch(program_argv, ranks, env, timeout, cut, cut_origin, read_result):
    """Runs `program_argv` on `ranks` ranks under `vcluster run`. With
    cut=(after_s, for_s), cuts xinjiang<->chongqing `after_s` seconds after
    cut_origin(process) (a time, or None: no cut) and heals it `for_s` seconds
    later. read_result(run) fills in what the program wrote."""
    run = Run()
    argv = [VCLUSTER, "run", "--timeout", str(timeout), "--", "-np", str(ranks)]
    for item in env:
        argv += ["-x", item]
    process = subprocess.Popen(argv + program_argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = threading.Thread(target=_reader, args=(process.stdout, run), daemon=True)
    reader.start()
    try:
        origin = cut_origin(process) if cut else None
        if origin is not None:
            after, length = cut
            time.sleep(max(0.0, origin + after - time.time()))
            subprocess.run([VCLUSTER, "cut", "xinjiang", "chongqing"], check=True, capture_output=True)
            run.cut_at = time.time()
            time.sleep(length)
            subprocess.run([VCLUSTER, "heal", "xinjiang", "chongqing"], check=True, capture_output=True)
            run.healed_at = time.time()
        run.returncode = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
        if run.cut_at and not run.healed_at:
            subprocess.run([VCLUSTER, "heal", "xinjiang", "chongqing"], capture_output=True)
        reader.join(timeout=5)
        read_result(run)
    return run


def _scratch(suffix):
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False, dir="/tmp") as f:
        return f.name


def loop(ranks=8, iters=200, size=4 << 20, cut=None, env=(), timeout=600):
    """allreduce_loop; a cut starts `after_s` seconds after its first iteration ends."""
    path = _scratch(".jsonl")
    program = [os.path.join(build_dir(), "examples", "allreduce_loop"), "--iters", str(iters), "--bytes", str(size),
               "--json", path]

    def read(run):
        _read_iterations(path, run)
        os.unlink(path)
    return _launch(program, ranks, env, timeout, cut, lambda p: _wait_for_first_iteration(path, p, timeout), read)


def train(ranks=8, steps=40, policy="sync", cut=None, env=(), timeout=600):
    """silk-train; a cut starts `after_s` seconds after launch. The Run's
    `seconds` is the training's wall time and `losses` the loss of every step."""
    path = _scratch(".json")
    program = [os.path.join(build_dir(), "examples", "train", "silk-train"), "--policy", policy, "--steps",
               str(steps), "--quiet", "--json", path]

    def read(run):
        try:
            with open(path) as f:
                result = json.load(f)
            run.seconds, run.losses = result["wall_s"], result["global_losses"]
        except (OSError, ValueError, KeyError):
            run.losses = None
        os.unlink(path)
    return _launch(program, ranks, env, timeout, cut, lambda p: time.time(), read)


def _wait_for_first_iteration(path, process, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        try:
            with open(path) as f:
                for line in f:
                    record = json.loads(line)
                    if "end" in record:
                        return record["end"]
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return None


def _read_iterations(path, run):
    try:
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if "iter" in record:
                    run.iterations.append(record)
                elif record.get("done"):
                    run.seconds, run.wrong = record["seconds"], record["wrong"]
    except (OSError, ValueError):
        pass
