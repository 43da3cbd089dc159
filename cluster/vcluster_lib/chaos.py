"""The chaos harness's schedule and runs: a seeded list of faults, applied to an
elastic `silk-train` job on the virtual cluster (cluster/chaos is the command).

Fault kinds (each with a length: how long the part stays away):
  kill_rank     SIGKILL one member; it starts again (next incarnation) after the length
  cut_wan       drop every packet between two regions, then heal
  degrade_link  lower the rate and raise the round trip of a link, then restore the spec's
  kill_region   SIGKILL every member of a region; they start again after the length
"""

import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field

from . import chaos_metrics, profiles, wanem
from .common import VclusterError
from .elastic import ElasticJob

KINDS = ("kill_rank", "cut_wan", "degrade_link", "kill_region")


@dataclass
class Fault:
    index: int
    at: float          # seconds after training started (the first step event)
    kind: str
    target: str        # member id, "regionA-regionB" or a region
    duration: float    # seconds until restart / heal / restore
    settings: dict = field(default_factory=dict)

    def describe(self):
        if self.kind == "kill_rank":
            return f"SIGKILL member {self.target}, restart after {self.duration:.1f} s"
        if self.kind == "kill_region":
            return f"SIGKILL region {self.target}, restart after {self.duration:.1f} s"
        if self.kind == "cut_wan":
            return f"cut WAN {self.target} for {self.duration:.1f} s"
        what = " ".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"degrade {self.target} ({what}) for {self.duration:.1f} s"


def make_schedule(seed, seconds, every, members, links, kinds=KINDS, max_cut=180.0):
    """Faults at every, 2*every, ... (each up to a tenth of `every` earlier) while at most seconds - every/2.
    `members`: [(member id, region)]; `links`: [(region a, region b)]. The same arguments give the same list."""
    rng = random.Random(seed)
    regions = sorted({region for _, region in members})
    kinds = [k for k in kinds if (k not in ("cut_wan", "degrade_link") or links) and
             (k != "kill_region" or len(regions) > 1)]
    if not kinds:
        raise VclusterError("no fault kind applies to this cluster")
    budget = max(2.0, every * 0.6)  # a fault ends well before the next one starts
    schedule, i = [], 1
    while True:
        at = round(every * i - rng.uniform(0, every / 10), 2)
        if at > seconds - every / 2:
            break
        kind = rng.choice(kinds)
        settings = {}
        if kind == "kill_rank":
            target = str(rng.choice([m for m, _ in members]))
            duration = rng.uniform(1.0, min(10.0, budget))
        elif kind == "kill_region":
            target = rng.choice(regions)
            duration = rng.uniform(2.0, min(30.0, budget))
        else:
            a, b = rng.choice(list(links))
            target = f"{a}-{b}"
            if kind == "cut_wan":  # log-uniform: short cuts are common, long ones rare
                duration = math.exp(rng.uniform(math.log(2.0), math.log(max(2.0, min(max_cut, budget)))))
            else:
                duration = rng.uniform(5.0, max(5.0, budget))
                settings = {"rate": rng.choice(["100mbit", "300mbit", "500mbit"]),
                            "rtt": rng.choice(["80ms", "120ms", "200ms"])}
        schedule.append(Fault(len(schedule), at, kind, target, round(duration, 2), settings))
        i += 1
    return schedule


class Injector:
    """Applies a schedule to a running ElasticJob; tick() does what is due. Every start and end is recorded."""

    def __init__(self, job, topology, schedule, say=print):
        self.job, self.topology, self.say = job, topology, say
        self.pending = list(schedule)
        self.active = []   # (end time, fault, record)
        self.records = []  # one dict per injected fault, what chaos_metrics.fault_metrics reads
        self.origin = None

    def tick(self, now):
        if self.origin is None:
            return
        while self.pending and now >= self.origin + self.pending[0].at:
            self._inject(self.pending.pop(0), now)
        for item in list(self.active):
            end, fault, record = item
            if now >= end:
                self._end(fault, record)
                self.active.remove(item)
        for record in self.records:  # when each held member actually started again
            for member in record["members"]:
                m = self.job.member(member)
                if record["ended_at"] and member not in record["restarted_at"] and m.incarnation > \
                        record["incarnations"][member] and m.started_at:
                    record["restarted_at"][member] = m.started_at

    def _inject(self, fault, now):
        record = dict(asdict(fault), injected_at=time.time(), ended_at=None, members=[], restarted_at={},
                      incarnations={})
        if fault.kind == "kill_rank":
            record["members"] = [int(fault.target)]
            self.job.kill(int(fault.target), signal.SIGKILL, hold=True)
        elif fault.kind == "kill_region":
            record["members"] = [m.id for m in self.job.region_members(fault.target)]
            self.job.kill_region(fault.target, signal.SIGKILL, hold=True)
        elif fault.kind == "cut_wan":
            a, b = self._pair(fault)
            record["members"] = [m.id for m in self.job.members if m.node.region != self.job.home.name]
            wanem.command(f"cut {a} {b}")
        else:
            a, b = self._pair(fault)
            wanem.command(f"set {a} {b} " + " ".join(f"{k}={v}" for k, v in sorted(fault.settings.items())))
        record["incarnations"] = {m: self.job.member(m).incarnation for m in record["members"]}
        self.records.append(record)
        self.active.append((time.time() + fault.duration, fault, record))
        self.say(f"chaos: t+{now - self.origin:6.1f} s fault {fault.index}: {fault.describe()}")

    def _pair(self, fault):
        for link in self.topology.links:
            if fault.target == f"{link.a}-{link.b}":
                return link.a, link.b
        raise VclusterError(f"fault {fault.index}: no link {fault.target}")

    def _end(self, fault, record):
        if fault.kind == "kill_rank":
            self.job.release(int(fault.target))
        elif fault.kind == "kill_region":
            self.job.release_region(fault.target)
        elif fault.kind == "cut_wan":
            wanem.command("heal {} {}".format(*self._pair(fault)))
        else:
            profiles.apply(self.topology, "spec", *self._pair(fault))
        record["ended_at"] = time.time()
        self.say(f"chaos: t+{record['ended_at'] - self.origin:6.1f} s fault {fault.index} over "
                 f"({fault.kind} {fault.target})")

    def finish(self):
        """Ends every active fault (heals, restores, releases): always called, also after an error."""
        for _, fault, record in self.active:
            try:
                self._end(fault, record)
            except Exception as error:  # keep ending the others
                self.say(f"chaos: could not end fault {fault.index}: {error}")
        self.active = []


def first_step_time(directory):
    for e in chaos_metrics.read_events(directory):
        if e["event"] == "step":
            return e["t"]
    return None


def run_job(topology, program, ranks, events_dir, seconds=None, schedule=(), timeout=1800, restart_delay=5.0,
            env=None, netns=True, coordinator=None, say=None, output=None, home_region=None):
    """Runs one elastic job, injecting `schedule` from its first step on. With `seconds`, the job is stopped that
    long after its first step (a baseline of a set length); else it runs until it ends or `timeout`.
    Returns {"status", "events", "records", "started", "ended"}."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    os.makedirs(events_dir, exist_ok=True)
    job = ElasticJob(topology, program, ranks, env=env, restart_delay=restart_delay, netns=netns, max_restarts=100,
                     home_region=home_region,
                     coordinator=coordinator, say=lambda line: say(f"vcluster: {line}"), output=output)
    injector = Injector(job, topology, schedule, say=say)
    started, status = time.time(), None
    deadline = started + timeout
    try:
        job.start()
        next_look = 0.0
        while job.poll():
            now = time.time()
            if injector.origin is None and now >= next_look:
                injector.origin = first_step_time(events_dir)
                next_look = now + 0.2
            injector.tick(now)
            if seconds is not None and injector.origin is not None and now >= injector.origin + seconds:
                say(f"chaos: {seconds:g} s of training done; stopping the job")
                status = 0
                break
            if now > deadline:
                say(f"chaos: the job ran over {timeout:g} s; stopping it")
                status = 124
                break
            time.sleep(0.05)
        if status is None:
            status = job.status()
    except KeyboardInterrupt:
        status = 130
        raise
    finally:
        injector.finish()
        job.stop()
    return {"status": status, "events": chaos_metrics.read_events(events_dir), "records": injector.records,
            "started": started, "ended": time.time(), "origin": injector.origin, "summary": job.summary()}


def _f(x, unit=" s"):
    return "-" if x is None else f"{x:.2f}{unit}"


def report_lines(result):
    """The per-fault table and the end figures, as printed lines."""
    lines = ["", f"{'#':>2} {'at s':>7} {'fault':<40} {'detect':>8} {'progress':>9} {'back':>8} {'stall':>8} "
             f"{'state':>14} {'lost members':<14}"]
    for i, f in enumerate(result["faults"]):
        what = f"{f['kind']} {f['target']} {f['duration_s']:.1f}s"
        state = f"{f['state_bytes'] / 2**20:.1f}MiB/{f['state_seconds']:.2f}s" if f["state_bytes"] else "-"
        lines.append(f"{i:>2} {f['at_s'] or 0:>7.1f} {what:<40} {_f(f['detect_s']):>8} {_f(f['progress_s']):>9} "
                     f"{_f(f['back_s']):>8} {_f(f['stall_s']):>8} {state:>14} "
                     f"{','.join(map(str, f['lost_members'])) or '-':<14}"
                     + (f" not back: {f['not_back']}" if f["not_back"] else ""))
    steps = result["steps"]
    lines.append("")
    lines.append(f"steps: 0..{steps['last']}, {len(steps['lost'])} lost {steps['lost'][:10]}, "
                 f"{len(steps['repeated'])} repeated {steps['repeated'][:10]}")
    final = result["final"]
    equal = "-" if final["equal"] is None else ("yes" if final["equal"] else
                                                 "NO" if final["expected"] else "no (the policy lets them differ)")
    lines.append(f"final parameters identical on all ranks: {equal} ({len(final['digests'])} ranks reported)")
    if "baseline" in result:
        base = result["baseline"]
        lines.append(f"goodput: {_f(result['samples_per_s'], '')} samples/s against {_f(base['samples_per_s'], '')} "
                     f"fault-free = {_f(None if result['goodput'] is None else 100 * result['goodput'], ' %')}")
        loss = lambda x: "-" if x is None else f"{x:.5g}"  # noqa: E731
        lines.append(f"final {result['final_loss_compared']}: {loss(result['final_loss'])} against fault-free "
                     f"{loss(result['final_loss_baseline'])} "
                     f"({_f(None if result['final_loss_vs_baseline'] is None else 100 * result['final_loss_vs_baseline'], ' %')})")
    else:
        lines.append(f"throughput: {_f(result['samples_per_s'], '')} samples/s (no baseline)")
    for e in result["exits"]:
        lines.append(f"member {e.get('member')} gave up: {e.get('error')}")
    return lines


def write_json(path, result):
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=str)
