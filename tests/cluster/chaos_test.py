#!/usr/bin/python3
"""Tests of the elastic launcher (cluster/vcluster_lib/elastic.py) and the chaos harness (cluster/chaos,
vcluster_lib/chaos*.py).

  chaos_test.py CASE
    schedule    the fault schedule is the same for a seed, differs between seeds, stays in its window
    metrics     steps lost/repeated, detect/progress/back times and goodput from synthetic event logs
    launcher    ElasticJob with local processes (no root): placement, variables, restart after a kill, hold
                and release, a member left down while the others finish, the timeout
    vcluster    (root) `vcluster run --elastic` on the virtual cluster with a stand-in rank: namespaces, host
                names, a rank killed and restarted, the coordinator reachable from every node
    rejoin      (root, needs elastic_member and silk-coordinator) run --elastic with real Silk members: one
                SIGKILLed, the others go on, it is restarted and rejoins, one digest at the end
    plumbing    (root) cluster/chaos with stand-ins for silk-train and silk-coordinator: four faults applied
                and undone, the report
    partition   (root, needs silk-train --elastic and silk-coordinator) a 23.9 s cut with the coordinator on
                either side: that side goes on, the other is lost and rejoins after the heal
    harness     (root, needs silk-train --elastic and silk-coordinator) cluster/chaos for 60 s with two faults
                (seed 1: member 4 killed and back after 2.1 s, the WAN cut for 8.2 s, within the tolerance)
"""
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "cluster"))
from vcluster_lib import chaos, chaos_metrics, elastic, topology  # noqa: E402
from vcluster_lib.common import build_dir  # noqa: E402

SKIP = 77
FAKE = os.path.join(HERE, "fake_elastic_rank.py")
VCLUSTER = os.path.join(REPO, "cluster", "vcluster")


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"  ok: {message}", flush=True)


def two_regions(slots=2):
    regions = []
    for i, name in enumerate(("xinjiang", "chongqing")):
        region = topology.Region(name, ipaddress.IPv4Network(f"198.18.{i + 1}.0/24"), f"198.18.{i + 1}.254",
                                 netns=f"silk-gw-{name}")
        for j in (1, 2):
            node = f"{name[:2] if i == 0 else 'cq'}{j}"
            region.nodes.append(topology.Node(node, f"198.18.{i + 1}.{j}", slots, name, netns=f"silk-{node}"))
        regions.append(region)
    return topology.Topology("test", "/nonexistent.textproto", regions,
                             [topology.Link("xinjiang", "chongqing", 10**9, 40.0, 0.0, 0.0, 9000)])


def case_schedule():
    members = [(i, "xinjiang" if i < 4 else "chongqing") for i in range(8)]
    links = [("xinjiang", "chongqing")]
    a = chaos.make_schedule(5, 600, 60, members, links)
    b = chaos.make_schedule(5, 600, 60, members, links)
    c = chaos.make_schedule(6, 600, 60, members, links)
    check([f.__dict__ for f in a] == [f.__dict__ for f in b], "the same seed gives the same schedule")
    check([f.__dict__ for f in a] != [f.__dict__ for f in c], "another seed gives another schedule")
    check(len(a) == 9 and all(30 < f.at <= 570 for f in a), f"9 faults inside the 10 minutes: {[f.at for f in a]}")
    check(all(b.at - a.at >= 50 for a, b in zip(a, a[1:])), "faults at least 50 s apart")
    check(all(f.duration <= 36 for f in a), "each fault over within 0.6 of the spacing")
    kinds = {f.kind for s in range(20) for f in chaos.make_schedule(s, 600, 60, members, links)}
    check(kinds == set(chaos.KINDS), f"every kind is drawn over 20 seeds: {sorted(kinds)}")
    only = chaos.make_schedule(1, 600, 60, members, links, kinds=["kill_rank"])
    check(all(f.kind == "kill_rank" and 0 <= int(f.target) < 8 for f in only), "--kinds restricts the draw")
    short = chaos.make_schedule(3, 60, 20, members, links)
    check(len(short) == 2, f"60 s with a fault every 20 s: two faults ({[f.describe() for f in short]})")
    cuts = [f for s in range(30) for f in chaos.make_schedule(s, 3600, 400, members, links, kinds=["cut_wan"])]
    check(all(2 <= f.duration <= 180 for f in cuts) and max(f.duration for f in cuts) > 60,
          "cuts last 2 s to 3 minutes")


def synthetic(kill_step=10, rejoin_step=20, steps=30, repeat=False, gap=False):
    """4 members, 1 s a step from t=1000; member 3 killed after step kill_step-1, rejoins at rejoin_step."""
    events, t = [], 1000.0
    epoch, members = 0, [0, 1, 2, 3]
    for s in range(steps):
        t += 1.0
        if s == kill_step:
            # member 3 finished step 10 alone in epoch 0 and dies; the others fail and redo it in epoch 1
            events.append(dict(t=t - 0.5, member=3, event="step", step=s, epoch=0, size=4, rank=3, loss=1.0,
                               samples=256))
            events.append(dict(t=t + 0.2, member=0, event="failure", step=s, error="peer lost"))
            epoch, members = 1, [0, 1, 2]
            for m in members:
                events.append(dict(t=t + 0.6, member=m, event="reconfigured", epoch=1, size=3, members=members,
                                   lost=[3], joined=[], seconds=0.4))
            t += 1.0
            if repeat:  # member 0 had completed step 10 in epoch 0 as well: a repeated step
                events.append(dict(t=t - 1.5, member=0, event="step", step=s, epoch=0, size=4, rank=0, loss=1.0,
                                   samples=256))
        if s == rejoin_step:
            epoch, members = 2, [0, 1, 2, 3]
            events.append(dict(t=t - 0.3, member=3, event="state", **{"from": 2}, bytes=4 << 20, seconds=0.2,
                               step=s))
            for m in members:
                events.append(dict(t=t - 0.2, member=m, event="reconfigured", epoch=2, size=4, members=members,
                                   lost=[], joined=[3], seconds=0.1))
            events.append(dict(t=t - 0.1, member=3, event="joined", epoch=2, step=s))
        if gap and s == 25:
            continue
        for m in members:
            events.append(dict(t=t + 0.01 * m, member=m, event="step", step=s, epoch=epoch, size=len(members),
                               rank=members.index(m), loss=1.0 / (s + 1), samples=64 * len(members)))
    for m in members:
        events.append(dict(t=t + 1, member=m, event="final", step=steps, param_digest="ab" * 8, loss=0.034))
    return sorted(events, key=lambda e: e["t"])


def case_metrics():
    events = synthetic()
    acc = chaos_metrics.step_accounting(events)
    check(acc["last"] == 29 and acc["lost"] == [] and acc["repeated"] == [],
          f"a kill with the step redone under the new epoch: 0 lost, 0 repeated ({acc['lost']}, {acc['repeated']})")
    shifted = [dict(e, epoch=e["epoch"] + 1) if "epoch" in e else e for e in synthetic(repeat=True)]
    check(chaos_metrics.step_accounting(shifted)["repeated"] == [10] and
          chaos_metrics.step_accounting([dict(e, epoch=e["epoch"] + 1) if "epoch" in e else e
                                         for e in events])["repeated"] == [],
          "the same when epochs count from 1 (the first has no reconfigured event)")
    acc = chaos_metrics.step_accounting(synthetic(repeat=True))
    check(acc["repeated"] == [10], f"a step completed by a survivor under epochs 0 and 1 is repeated: {acc['repeated']}")
    acc = chaos_metrics.step_accounting(synthetic(gap=True))
    check(acc["lost"] == [25], f"a step nobody completed is lost: {acc['lost']}")
    dup = events + [next(dict(e, t=e["t"] + 0.001) for e in events if e["event"] == "step" and e["step"] == 28)]
    check(chaos_metrics.step_accounting(dup)["repeated"] == [28], "a step one member reported twice is repeated")
    fault = {"kind": "kill_rank", "target": "3", "at": 10.0, "duration": 9.0, "injected_at": 1010.5,
             "ended_at": 1019.5, "members": [3], "restarted_at": {3: 1019.6}}
    m = chaos_metrics.fault_metrics(events, fault, float("inf"))
    check(abs(m["detect_s"] - 0.7) < 1e-6, f"detect: first failure after the kill ({m['detect_s']:.2f} s)")
    check(abs(m["progress_s"] - 1.5) < 1e-6, f"progress: first survivor step after the failure "
          f"({m['progress_s']:.2f} s)")
    check(m["lost_members"] == [3] and m["back_s"] is not None and abs(m["back_s"] - (1022.03 - 1019.6)) < 1e-6,
          f"back: member 3's first step after its restart ({m['back_s']:.2f} s)")
    check(m["state_bytes"] == 4 << 20, "state transfer bytes from the state event")
    quiet = chaos_metrics.fault_metrics(events, dict(fault, injected_at=1004.05, ended_at=1006.0), 1009.0)
    check(quiet["detect_s"] is None and quiet["progress_s"] is None and quiet["lost_members"] == [],
          "a fault nobody noticed: no detection, nobody lost")
    base = [e for e in synthetic(kill_step=99, rejoin_step=99) if e["event"] in ("step", "final")]
    summary = chaos_metrics.summary(events, [fault], baseline_events=base)
    check(summary["final"]["equal"] is True and summary["steps"]["lost"] == [], "summary: digests equal, no loss")
    check(summary["goodput"] is not None and 0.85 < summary["goodput"] < 1.0,
          f"goodput below 1 when one member of four was away for 10 of 30 steps ({summary['goodput']:.3f})")
    odd = events + [dict(t=2000.0, member=1, event="final", step=30, param_digest="cd" * 8, loss=0.034)]
    check(chaos_metrics.finals(odd)["equal"] is False, "a differing digest is reported")
    lines = chaos.report_lines(summary)
    check(any("goodput" in line for line in lines) and any("kill_rank" in line for line in lines),
          "the report prints the fault table and goodput")


def case_launcher():
    with tempfile.TemporaryDirectory() as d:
        spec = two_regions()
        program = [sys.executable, FAKE, "--events", f"{d}/events-%r.jsonl", "--steps", "40", "--step-seconds",
                   "0.1", "--fail-member", "2", "--fail-step", "5", "--env-out", f"{d}/env-%r-%i.json"]
        lines = []
        with open(os.path.join(d, "out.log"), "w") as out:
            job = elastic.ElasticJob(spec, program, 6, env={"FAKE_EXTRA": "yes"}, restart_delay=0.5, netns=False,
                                     coordinator=False, output=out, say=lines.append)
            job.start()
            time.sleep(1.5)
            check(job.kill(4, hold=True), "kill a running member with its restart held")
            time.sleep(1.0)
            job.poll()
            check(not job.member(4).running and job.member(4).incarnation == 0, "a held member stays down")
            job.release(4)
            status = job.wait(30)
            job.stop()
        check(status == 0, f"every member ended with 0 ({status}; {lines})")
        check(job.member(2).incarnation == 1 and job.member(4).incarnation == 1,
              "the failed member and the killed one ran a second incarnation")
        check(any("restart: member 2" in line and "exit 3" in line for line in lines),
              f"the restart is announced with its cause: {[l for l in lines if 'restart' in l]}")
        env = json.load(open(f"{d}/env-2-1.json"))
        check(env["RANK"] == "2" and env["WORLD_SIZE"] == "6" and env["SILK_ELASTIC"] == "1" and
              env["SILK_ELASTIC_INCARNATION"] == "1" and env["FAKE_EXTRA"] == "yes",
              "RANK, WORLD_SIZE, SILK_ELASTIC, the incarnation and -x variables reach the rank")
        nodes = [json.load(open(f"{d}/env-{r}-0.json"))["SILK_NODE"] for r in range(6)]
        check(nodes == ["xi1", "xi1", "xi2", "xi2", "cq1", "cq1"], f"ranks fill each node's slots in order: {nodes}")
        check(json.load(open(f"{d}/env-5-0.json"))["SILK_REGION"] == "chongqing", "SILK_REGION is the node's")
        tokens = {json.load(open(f"{d}/env-{r}-0.json"))["SILK_JOB_TOKEN"] for r in range(6)}
        check(len(tokens) == 1 and None not in tokens, "one job token for every rank")
        log = open(os.path.join(d, "out.log")).read()
        check("[member 2] fake rank 2 incarnation 1" in log, "rank output is prefixed with the member")
    with tempfile.TemporaryDirectory() as d:
        program = [sys.executable, FAKE, "--events", f"{d}/events-%r.jsonl", "--steps", "15", "--step-seconds",
                   "0.1"]
        lines = []
        job = elastic.ElasticJob(two_regions(), program, 4, netns=False, coordinator=False,
                                 output=open(os.devnull, "w"), say=lines.append)
        job.start()
        time.sleep(0.5)
        job.kill(1, hold=True)
        status = job.wait(20)
        job.stop()
        check(status == 0 and job.member(1).abandoned, f"a member held down while the others finish does not "
              f"fail the job ({status}, {lines[-2:]})")
    job = elastic.ElasticJob(two_regions(), ["sleep", "60"], 2, netns=False, coordinator=False,
                             output=open(os.devnull, "w"), say=lambda line: None)
    job.start()
    began = time.monotonic()
    status = job.wait(1.0)
    job.stop()
    check(status == 124 and time.monotonic() - began < 10 and not any(m.running for m in job.members),
          "the timeout gives 124 and stop() ends every rank")
    try:
        elastic.place(two_regions(), 9)
        check(False, "more ranks than slots is refused")
    except elastic.VclusterError as error:
        check("slots" in str(error), f"more ranks than slots is refused: {error}")
    for bad in (["-np", "2", "--hostfile", "h", "prog"], ["prog"]):
        try:
            elastic.parse_run_args(bad)
            check(False, f"{bad} refused")
        except elastic.VclusterError as error:
            check(True, f"{bad} refused: {error}")
    check(elastic.parse_run_args(["-np", "3", "-x", "A=1", "prog", "-x"]) == (3, {"A": "1"}, ["prog", "-x"]),
          "-np and -x before the program; the program's own arguments untouched")


def need_root():
    if os.geteuid() != 0:
        print("skipped: needs root")
        sys.exit(SKIP)


FAKE_COORDINATOR = """#!/usr/bin/python3
import socket, sys
port, bind = sys.argv[sys.argv.index("--port") + 1], sys.argv[sys.argv.index("--bind") + 1]
server = socket.create_server((bind, int(port)))
print(f"silk-coordinator: listening on {bind}:{port}", flush=True)
while True:
    server.accept()[0].close()
"""


def case_vcluster():
    """With silk-coordinator built: the CLI. Without: ElasticJob in the namespaces with a stand-in coordinator."""
    need_root()
    coordinator = os.path.join(build_dir(), "runtime", "silk-coordinator")
    subprocess.run([VCLUSTER, "up"], check=True, capture_output=True, timeout=300)
    try:
        with tempfile.TemporaryDirectory() as d:
            fake_rank = [sys.executable, FAKE, "--events", f"{d}/events-%r.jsonl", "--steps", "30",
                         "--step-seconds", "0.1", "--fail-member", "5", "--fail-step", "3", "--env-out",
                         f"{d}/env-%r-%i.json"]
            if os.access(coordinator, os.X_OK):
                result = subprocess.run([VCLUSTER, "run", "--elastic", "--restart-delay", "1", "--timeout", "60",
                                         "--", "-np", "8", *fake_rank], capture_output=True, text=True, timeout=120)
                print(result.stdout[-2000:], result.stderr[-2000:])
                status, said = result.returncode, result.stderr
            else:
                print(f"{coordinator} is not built: ElasticJob with a stand-in coordinator")
                stand_in = os.path.join(d, "coordinator.py")
                with open(stand_in, "w") as f:
                    f.write(FAKE_COORDINATOR)
                os.chmod(stand_in, 0o755)
                lines = []
                spec = topology.load(os.path.join(REPO, "cluster", "specs", "xinjiang-chongqing.textproto"))
                job = elastic.ElasticJob(spec, fake_rank, 8, restart_delay=1.0, say=lines.append,
                                         coordinator=stand_in)
                try:
                    job.start()
                    status = job.wait(60)
                finally:
                    job.stop()
                said = "\n".join(lines)
                print(said)
            check(status == 0, f"the elastic job exits 0 ({status})")
            check("restart: member 5" in said, "member 5 was restarted")
            env = [json.load(open(f"{d}/env-{r}-0.json")) for r in range(8)]
            check([e["hostname"] for e in env] == ["xj1", "xj1", "xj2", "xj2", "cq1", "cq1", "cq2", "cq2"],
                  "each rank runs under its node's host name, two per node")
            check(all(e["MASTER_ADDR"] == "198.18.1.1" and e["SILK_SOCKET_IFNAME"] == "eth0" for e in env),
                  "MASTER_ADDR is the home region's first node")
            check(all(e["coordinator_reached"] is True for e in env),
                  f"every node reaches the coordinator: {[e['coordinator_reached'] for e in env]}")
            check(os.path.exists(f"{d}/env-5-1.json"), "the restarted incarnation ran")
    finally:
        subprocess.run([VCLUSTER, "down"], capture_output=True, timeout=300)


def case_rejoin():
    """`vcluster run --elastic` with real Silk members (tests/training/elastic_member): member 5 is SIGKILLed at
    step 50, the others shrink and go on, the launcher restarts it, it rejoins, and all end with one digest."""
    need_root()
    member = os.path.join(build_dir(), "tests", "training", "elastic_member")
    coordinator = os.path.join(build_dir(), "runtime", "silk-coordinator")
    if not (os.access(member, os.X_OK) and os.access(coordinator, os.X_OK)):
        print("skipped: elastic_member or silk-coordinator is not built")
        sys.exit(SKIP)
    subprocess.run([VCLUSTER, "up"], check=True, capture_output=True, timeout=300)
    try:
        # the member takes its incarnation as a flag: pass the launcher's
        wrapper = ["sh", "-c", 'exec "$0" --incarnation "$SILK_ELASTIC_INCARNATION" "$@"', member]
        result = subprocess.run([VCLUSTER, "run", "--elastic", "--restart-delay", "2", "--timeout", "150", "--",
                                 "-np", "8", *wrapper, "--steps", "300", "--die-member", "5", "--die-at", "50"],
                                capture_output=True, text=True, timeout=240)
    finally:
        subprocess.run([VCLUSTER, "down"], capture_output=True, timeout=300)
    print(result.stdout[-3000:], result.stderr[-3000:])
    check(result.returncode == 0, f"the elastic job exits 0 ({result.returncode})")
    check("restart: member 5 on cq1 (chongqing) killed by SIGKILL" in result.stderr, "member 5 was restarted")
    results = [line.split("RESULT ", 1)[1] for line in result.stdout.splitlines() if "RESULT " in line]
    fields = [dict(item.split("=") for item in line.split()) for line in results]
    check(sorted(int(f["member"]) for f in fields) == list(range(8)), "every member reported its result")
    check(len({f["digest"] for f in fields}) == 1 and all(f["step"] == "300" and f["size"] == "8" for f in fields),
          f"one digest, 300 steps and 8 members everywhere at the end ({results[:1]})")


def case_plumbing():
    """cluster/chaos end to end on the virtual cluster with the stand-ins for silk-train and silk-coordinator:
    faults applied and undone, killed members restarted and stepping again, the report and its JSON."""
    need_root()
    with tempfile.TemporaryDirectory() as d:
        stand_in = os.path.join(d, "coordinator.py")
        with open(stand_in, "w") as f:
            f.write(FAKE_COORDINATOR)
        os.chmod(stand_in, 0o755)
        report = os.path.join(d, "chaos.json")
        result = subprocess.run([os.path.join(REPO, "cluster", "chaos"), "--seed", "2", "--minutes", "0.6",
                                 "--fault-every", "8", "--program", FAKE, "--coordinator", stand_in, "--json", report,
                                 "--events-dir", os.path.join(d, "events"), "--", "--step-seconds", "0.1"],
                                capture_output=True, text=True, timeout=240)
        print(result.stdout[-5000:], result.stderr[-2000:])
        check(result.returncode == 0, f"cluster/chaos exits 0 ({result.returncode})")
        r = json.load(open(report))
        check([f["kind"] for f in r["faults"]] == ["kill_rank", "degrade_link", "cut_wan", "degrade_link"],
              f"the seed's four faults were injected: {[f['kind'] for f in r['faults']]}")
        kills = [f for f in r["faults"] if f["kind"] == "kill_rank"]
        check(all(f["lost_members"] == [] and f["back_s"] is not None and f["back_s"] < 3 for f in kills),
              f"each killed member stepped again soon after its restart: {[f['back_s'] for f in kills]}")
        check(r["steps"]["lost"] == [] and r["steps"]["repeated"] == [] and r["final"]["equal"] is True,
              "no step lost or repeated, equal digests")
        check(r["goodput"] is not None and 0.9 < r["goodput"] < 1.1, f"goodput near 1 ({r['goodput']})")
        check("goodput:" in result.stdout and "fault 3:" in result.stdout, "the report is printed")
        stats = json.loads(subprocess.run([VCLUSTER, "status", "--quick", "--json"], capture_output=True,
                                          text=True).stdout or "null")
        check(stats is None, "the cluster is down afterwards")


def case_partition():
    """The split-brain rule on both sides of a cut: cluster/chaos cuts the WAN for 23.9 s (seed 24) with the
    coordinator in Xinjiang, then in Chongqing; each time the coordinator's side goes on, the other is lost and
    comes back after the heal, and no step is lost or repeated."""
    need_root()
    train = os.path.join(build_dir(), "examples", "train", "silk-train")
    helptext = subprocess.run([train, "--help"], capture_output=True, text=True).stdout \
        if os.access(train, os.X_OK) else ""
    if "--elastic" not in helptext or not os.access(os.path.join(build_dir(), "runtime", "silk-coordinator"), os.X_OK):
        print("skipped: silk-train --elastic or silk-coordinator is not built")
        sys.exit(SKIP)
    far = {"xinjiang": [4, 5, 6, 7], "chongqing": [0, 1, 2, 3]}
    for home in ("xinjiang", "chongqing"):
        with tempfile.TemporaryDirectory() as d:
            report = os.path.join(d, "chaos.json")
            result = subprocess.run([os.path.join(REPO, "cluster", "chaos"), "--seed", "24", "--minutes", "1",
                                     "--fault-every", "40", "--kinds", "cut_wan", "--outage-tolerance", "5",
                                     "--op-timeout", "5", "--home-region", home, "--no-baseline", "--steps", "1000",
                                     "--timeout", "300", "--json", report, "--events-dir", d],
                                    capture_output=True, text=True, timeout=420)
            print(result.stdout[-3000:], result.stderr[-2000:])
            r = json.load(open(report))
            cut = r["faults"][0]
            check(cut["kind"] == "cut_wan" and cut["duration_s"] > 20, f"home {home}: a {cut['duration_s']} s cut")
            check(cut["lost_members"] == far[home], f"home {home}: the far side was lost ({cut['lost_members']})")
            check(cut["progress_s"] is not None and cut["progress_s"] < 20,
                  f"home {home}: the coordinator's side went on {cut['progress_s']} s after the cut")
            check(cut["back_s"] is not None, f"home {home}: the far side trained again {cut['back_s']} s after the heal")
            check(r["steps"]["lost"] == [] and r["steps"]["repeated"] == [] and r["final"]["equal"] is True
                  and r["status"] == 0, f"home {home}: 0 steps lost or repeated, one digest, status 0")


def case_harness():
    need_root()
    train = os.path.join(build_dir(), "examples", "train", "silk-train")
    coordinator = os.path.join(build_dir(), "runtime", "silk-coordinator")
    helptext = subprocess.run([train, "--help"], capture_output=True, text=True).stdout \
        if os.access(train, os.X_OK) else ""
    if "--elastic" not in helptext or not os.access(coordinator, os.X_OK):
        print("skipped: silk-train --elastic or silk-coordinator is not built")
        sys.exit(SKIP)
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "chaos.json")
        result = subprocess.run([os.path.join(REPO, "cluster", "chaos"), "--seed", "1", "--minutes", "1",
                                 "--fault-every", "20", "--kinds", "kill_rank,cut_wan", "--timeout", "300",
                                 "--json", report, "--events-dir", d, "--", "--hidden", "256"],
                                capture_output=True, text=True, timeout=900)
        print(result.stdout[-6000:], result.stderr[-3000:])
        check(os.path.exists(report), "the harness wrote its JSON")
        r = json.load(open(report))
        check(len(r["faults"]) == 2, "two faults injected")
        kill = r["faults"][0]
        check(kill["kind"] == "kill_rank" and kill["detect_s"] is not None and kill["progress_s"] is not None
              and kill["progress_s"] < 15, f"the kill was detected and the survivors went on "
              f"(detect {kill['detect_s']}, progress {kill['progress_s']})")
        check(kill["back_s"] is not None, f"the killed member trained again ({kill['back_s']} s after its restart)")
        check(r["steps"]["lost"] == [] and r["steps"]["repeated"] == [], "0 steps lost or repeated")
        check(r["final"]["equal"] is True, "identical parameters on every rank at the end")
        check(r["status"] == 0, f"the chaos run ended with 0 ({r['status']})")
        check(r["goodput"] is not None and r["goodput"] > 0.3, f"goodput {r['goodput']}")
        check(result.returncode == 0, f"cluster/chaos exits 0 ({result.returncode})")


if __name__ == "__main__":
    cases = {name[5:]: f for name, f in globals().items() if name.startswith("case_")}
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        sys.exit(f"usage: chaos_test.py {'|'.join(cases)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cases[sys.argv[1]]()
    print("PASS")
