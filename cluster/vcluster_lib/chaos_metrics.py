"""What `cluster/chaos` concludes from the ranks' event logs (`silk-train --elastic --events`).

Pure functions of the events (dicts with "t", "member", "event", ...) and of
the faults that were injected; no processes, no root, so tests feed them
synthetic logs. Definitions (docs/reliability.md, "Elastic launch and the
chaos harness"):

* epoch e's members come from its "reconfigured" events (an epoch without one,
  such as the first: every member that reported a step under it). A member *carried on* past epoch e when
  it is a member of the next epoch seen (every member of the last epoch
  carried on). A step report (member, step s, epoch e) *counts* when its member
  carried on past e: the reports of a member lost at the end of e may describe
  a step its survivors never finished, and are not the job's.
* a step s is *completed* under epoch e when some counted report says so.
  Steps 0..last (the highest completed) must each be completed exactly once:
  **lost** steps are those completed under no epoch (gaps); **repeated** steps
  are those completed under two or more epochs, or reported twice by one member
  within one epoch.
* the time a step was done is the latest of its counted reports; goodput is
  the samples of steps after the first over the time from the first step's
  completion to the last's.
"""

import json
import os
import statistics


def read_events(directory):
    """Every JSON line of every events*.jsonl file under `directory`, sorted by time (a torn last line is skipped)."""
    events = []
    if not os.path.isdir(directory):
        return events
    for name in sorted(os.listdir(directory)):
        if not (name.startswith("events") and name.endswith(".jsonl")):
            continue
        with open(os.path.join(directory, name), errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "t" in record and "event" in record:
                    events.append(record)
    events.sort(key=lambda e: e["t"])
    return events


def epochs(events):
    """{epoch: set of members}: from "reconfigured" events; an epoch without one (the first) from its step reports."""
    members = {}
    for e in events:
        if e["event"] == "reconfigured":
            members.setdefault(int(e["epoch"]), set()).update(int(m) for m in e.get("members", []))
    reported = {}
    for e in events:
        if e["event"] == "step":
            reported.setdefault(int(e.get("epoch", 0)), set()).add(int(e["member"]))
    for epoch, who in reported.items():
        if epoch not in members:
            members[epoch] = who
    return members


def counted_steps(events):
    """The step reports that count (see the module's doc), and the number of duplicate reports within an epoch."""
    members = epochs(events)
    order = sorted(members)
    carried = {}
    for i, epoch in enumerate(order):
        carried[epoch] = members[order[i + 1]] if i + 1 < len(order) else None  # None: the last epoch, all carry on
    counted, seen, duplicates = [], set(), set()
    for e in events:
        if e["event"] != "step":
            continue
        epoch, member, step = int(e.get("epoch", 0)), int(e["member"]), int(e["step"])
        survivors = carried.get(epoch)
        if survivors is not None and member not in survivors:
            continue
        key = (member, epoch, step)
        if key in seen:
            duplicates.add(step)
        seen.add(key)
        counted.append(e)
    return counted, duplicates


def step_accounting(events):
    """{"last", "completed", "lost": [...], "repeated": [...], "done_at": {step: t}, "samples": {step: n}}."""
    counted, duplicates = counted_steps(events)
    under, done_at, samples, losses = {}, {}, {}, {}
    for e in counted:
        s = int(e["step"])
        under.setdefault(s, set()).add(int(e.get("epoch", 0)))
        done_at[s] = max(done_at.get(s, 0.0), e["t"])
        samples.setdefault(s, int(e.get("samples", 0)))
        if "loss" in e:
            losses.setdefault(s, []).append(float(e["loss"]))
    if not under:
        return {"last": None, "completed": 0, "lost": [], "repeated": [], "done_at": {}, "samples": {}, "loss": {}}
    last = max(under)
    lost = [s for s in range(0, last + 1) if s not in under]
    repeated = sorted({s for s, es in under.items() if len(es) > 1} | duplicates)
    return {"last": last, "completed": len(under), "lost": lost, "repeated": repeated, "done_at": done_at,
            "samples": samples, "loss": {s: statistics.fmean(v) for s, v in losses.items()}}


def throughput(accounting):
    """(samples per second, seconds, samples) from the first step's completion to the last's; None when < 2 steps."""
    done = accounting["done_at"]
    if len(done) < 2:
        return None
    first, last = min(done), max(done)
    seconds = done[last] - done[first]
    samples = sum(n for s, n in accounting["samples"].items() if s != first)
    return (samples / seconds if seconds > 0 else None), seconds, samples


def finals(events):
    """{"digests": {member: hex}, "equal": bool|None, "expected": whether the policy keeps them identical,
    "loss": mean of final losses|None, "heldout_loss": likewise, "step": highest}."""
    last = {}
    for e in events:
        if e["event"] == "final":
            last[int(e["member"])] = e  # a member's last incarnation's final wins
    digests = {m: e.get("param_digest") for m, e in last.items()}

    def mean(key):
        values = [float(e[key]) for e in last.values() if key in e]
        return statistics.fmean(values) if values else None
    return {"digests": digests, "equal": (len(set(digests.values())) == 1) if digests else None,
            "expected": all(e.get("identical_expected", True) for e in last.values()),
            "loss": mean("loss"), "heldout_loss": mean("heldout_loss"),
            "step": max((int(e.get("step", 0)) for e in last.values()), default=None)}


def last_steps_loss(accounting, upto=None, n=10):
    """Mean over the n steps before `upto` (default: after the last) of each step's mean loss: what silk-train's
    final "loss" is, computed the same way for a run stopped before its end."""
    losses = accounting["loss"]
    if not losses:
        return None
    end = (max(losses) + 1) if upto is None else upto
    chosen = [losses[s] for s in range(end - n, end) if s in losses]
    return statistics.fmean(chosen) if chosen else None


def _first(events, after, before, predicate):
    return next((e for e in events if after <= e["t"] < before and predicate(e)), None)


def fault_metrics(events, fault, window_end):
    """One fault's figures. `fault` has "kind", "injected_at", "ended_at" (heal/restore/release time, or None),
    "members" (those the fault takes away, as expected), "restarted_at" ({member: start time of its next
    incarnation}). Times in seconds after injection, None when it did not happen."""
    t0 = fault["injected_at"]
    failure = _first(events, t0, window_end, lambda e: e["event"] == "failure")
    reconfig = _first(events, t0, window_end, lambda e: e["event"] == "reconfigured" and e.get("lost"))
    lost = set()
    for e in events:
        if t0 <= e["t"] < window_end and e["event"] == "reconfigured":
            lost |= {int(m) for m in e.get("lost", [])}
    expected = {int(m) for m in fault.get("members", [])}
    # who the fault took away: as the members saw it, else as injected (a kill takes its members away for sure;
    # a cut only when someone noticed)
    away = lost or (expected if failure or fault["kind"] in ("kill_rank", "kill_region") else set())
    progress = None
    if failure is not None:
        # steps in flight may still complete under the old membership just after the failure: progress is the
        # first survivor's step after the new membership (when one came), else after the failure
        since = reconfig["t"] if reconfig is not None else failure["t"]
        step = _first(events, since, window_end,
                      lambda e: e["event"] == "step" and int(e["member"]) not in away)
        progress = None if step is None else step["t"] - t0
    back, back_from = {}, {}
    for member in sorted(away):
        starts = [x for x in ((fault.get("restarted_at") or {}).get(member), fault.get("ended_at")) if x]
        if not starts:
            continue
        since = max(starts)  # the later of its restart and the heal
        step = _first(events, since, window_end, lambda e, m=member: e["event"] == "step" and int(e["member"]) == m)
        back_from[member] = since
        back[member] = None if step is None else step["t"] - since
    states = [e for e in events if t0 <= e["t"] < window_end and e["event"] == "state"]
    return {
        "kind": fault["kind"], "target": fault.get("target"), "at_s": fault.get("at"),
        "duration_s": fault.get("duration"),
        "detect_s": None if failure is None else failure["t"] - t0,
        "reconfigured_s": None if reconfig is None else reconfig["t"] - t0,
        "lost_members": sorted(lost), "progress_s": progress,
        "back_s": max(back.values()) if back and None not in back.values() else None,
        "back_each_s": back, "not_back": sorted(m for m, v in back.items() if v is None),
        "stall_s": longest_stall(events, t0, window_end),
        "state_bytes": sum(int(e.get("bytes", 0)) for e in states),
        "state_seconds": max((float(e.get("seconds", 0)) for e in states), default=None),
    }


def longest_stall(events, start, end):
    """The longest time in [start, end) with no step completed by anyone (from `start` to the first completion
    counts as well)."""
    times = [e["t"] for e in events if e["event"] == "step" and start <= e["t"] < end]
    if not times:
        return None
    gaps = [times[0] - start] + [b - a for a, b in zip(times, times[1:])]
    return max(gaps)


def summary(events, faults, baseline_events=None, baseline_final_loss=None):
    """Everything the harness reports at the end, as one JSON-able dict."""
    accounting = step_accounting(events)
    ends = [f["injected_at"] for f in faults[1:]] + [float("inf")]
    per_fault = [fault_metrics(events, f, end) for f, end in zip(faults, ends)]
    rate = throughput(accounting)
    result = {
        "faults": per_fault,
        "steps": {"last": accounting["last"], "completed": accounting["completed"], "lost": accounting["lost"],
                  "repeated": accounting["repeated"]},
        "samples_per_s": rate[0] if rate else None, "train_seconds": rate[1] if rate else None,
        "final": finals(events),
        "exits": [e for e in events if e["event"] == "exit"],
    }
    if baseline_events is not None:
        base_accounting = step_accounting(baseline_events)
        base_rate = throughput(base_accounting)
        base_final = finals(baseline_events)
        upto = None if accounting["last"] is None else accounting["last"] + 1
        if upto is not None and base_accounting["last"] is not None:
            upto = min(upto, base_accounting["last"] + 1)
        result["baseline"] = {"samples_per_s": base_rate[0] if base_rate else None,
                              "train_seconds": base_rate[1] if base_rate else None,
                              "last_step": base_accounting["last"],
                              "final_loss": last_steps_loss(base_accounting, upto),
                              "heldout_loss": base_final["heldout_loss"]}
        result["goodput"] = (result["samples_per_s"] / base_rate[0]
                             if rate and base_rate and rate[0] and base_rate[0] else None)
        # the same quantity on both sides: held-out loss when both runs ended with it, else the mean loss of the
        # last 10 steps (both from step events)
        if result["final"]["heldout_loss"] is not None and base_final["heldout_loss"] is not None:
            mine, theirs, what = result["final"]["heldout_loss"], base_final["heldout_loss"], "held-out loss"
        else:
            mine, theirs = last_steps_loss(accounting, upto), result["baseline"]["final_loss"]
            what = "mean loss of the last 10 steps"
        result["final_loss"], result["final_loss_compared"] = mine, what
        result["final_loss_baseline"] = theirs
        result["final_loss_vs_baseline"] = (mine / theirs - 1.0 if mine is not None and theirs else None)
    return result
