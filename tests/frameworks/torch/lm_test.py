"""examples/pytorch/train_lm.py, short runs of a tiny model under mpirun -np 3.

  sync      gloo and silk (plain DDP): the same training loss at every step and
            the same held-out loss (within float rounding: the two reduce in
            different orders), the loss falls, and every replica ends with
            bit-identical parameters.
  policies  silk with the delayed hook, the periodic averager (period 3, ending
            on an outer step; and with ranks 0-1 and 2 in two regions
            (SILK_REGION), DDP inside each region, the outer gradient in
            int4 and overlapped, as cluster/demo-lm runs it), torch's PowerSGD hook, and
            sync with the WAN hop in int8 in those two regions: each
            run completes with finite losses; periodic, PowerSGD and sync replicas
            end identical (every rank applies the same averaged update),
            delayed ones within a small bound (each replica is ahead by its
            own latest local step); delayed with the region's average as
            fresh term (--delayed-local region) in those two regions leaves
            the replicas of a region identical.

Usage: lm_test.py PATH/TO/train_lm.py sync|policies
"""
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

RANKS = 3
TINY = ["--layers", "2", "--width", "32", "--heads", "2", "--context", "32", "--global-batch", "6",
        "--heldout-samples", "24", "--eval-every", "4", "--warmup", "2", "--lr", "3e-3"]


# Runs the script with SILK_REGION set from the rank: ranks 0-1 in one region, the others in a second.
IN_REGIONS = ("import os, runpy, sys; rank = int(os.environ['OMPI_COMM_WORLD_RANK']); "
              "os.environ['SILK_REGION'] = 'east' if rank < 2 else 'west'; "
              "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def train(script, out_dir, name, backend, policy, steps, extra=(), regions=False):
    path = os.path.join(out_dir, f"{name}.json")
    argv = [script, "--backend", backend, "--policy", policy, "--steps", str(steps), "--json", path] + TINY + list(extra)
    if regions:
        argv = ["-c", IN_REGIONS] + argv
    code, output = launch.mpirun(RANKS, argv, timeout=90)
    print(f"----- {name} (mpirun exit code {code})\n{output.strip()}")
    if code != 0 or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def check_sync(script, out_dir, failures):
    steps = 10
    runs = {b: train(script, out_dir, b, b, "sync", steps) for b in ("gloo", "silk")}
    for backend, run in runs.items():
        if run is None:
            failures.append(f"the {backend} run failed")
        elif len(run["losses"]) != steps:
            failures.append(f"{backend}: {len(run['losses'])} losses, expected {steps}")
        elif not run["params_identical"]:
            failures.append(f"{backend}: replicas differ at the end: {run['param_digests']}")
    if failures:
        return
    gloo, silk = runs["gloo"], runs["silk"]
    for step, (a, b) in enumerate(zip(gloo["losses"], silk["losses"])):
        if not math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6):
            failures.append(f"step {step}: loss {a!r} (gloo) vs {b!r} (silk)")
    for a, b in zip(gloo["heldout_curve"], silk["heldout_curve"]):
        if not math.isclose(a["loss"], b["loss"], rel_tol=1e-5):
            failures.append(f"held-out after step {a['step']}: {a['loss']!r} (gloo) vs {b['loss']!r} (silk)")
    if not silk["losses"][-1] < silk["losses"][0]:
        failures.append(f"silk: the loss did not fall ({silk['losses'][0]} -> {silk['losses'][-1]})")
    print(f"losses, gloo: {[round(x, 5) for x in gloo['losses']]}\nlosses, silk: {[round(x, 5) for x in silk['losses']]}")


def check_policies(script, out_dir, failures):
    steps = 6
    cases = {"delayed": [], "periodic": ["--period", "3"], "powersgd": ["--powersgd-rank", "2"],
             "periodic-regions": ["--period", "3", "--inner", "region", "--outer-compression", "int4",
                                  "--outer-overlap"],
             "sync-int8-regions": ["--wan-compression", "int8"],
             "delayed-regions": ["--delayed-local", "region"]}
    for name, extra in cases.items():
        policy = name.split("-")[0]
        run = train(script, out_dir, name, "silk", policy, steps, extra, regions=name.endswith("regions"))
        if run is None:
            failures.append(f"the {policy} run failed")
            continue
        if len(run["losses"]) != steps or not all(math.isfinite(x) for x in run["losses"]):
            failures.append(f"{policy}: losses {run['losses']}")
        if not math.isfinite(run["heldout_loss"]):
            failures.append(f"{policy}: held-out loss {run['heldout_loss']}")
        if policy in ("periodic", "powersgd", "sync") and not run["params_identical"]:
            failures.append(f"{policy}: replicas differ at the end ({run['replica_spread']}): {run['param_digests']}")
        if policy == "delayed" and not 0 <= run["replica_spread"] < 0.05:
            failures.append(f"delayed: replicas {run['replica_spread']} apart, expected a small bound")
        digests = run["param_digests"]
        if name == "delayed-regions" and len(set(digests[:2])) != 1:  # ranks 0-1 are one region
            failures.append(f"{name}: the replicas of a region differ: {digests}")
        if name.endswith("regions") and run["regions"] != ["east", "west"]:
            failures.append(f"{name}: ran in regions {run['regions']}")
        print(f"{name}: replicas {'identical' if run['params_identical'] else run['replica_spread']}")


def main():
    script, scenario = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as out_dir:
        {"sync": check_sync, "policies": check_policies}[scenario](script, out_dir, failures)
    for failure in failures:
        print("FAILED:", failure)
    print("PASSED" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
