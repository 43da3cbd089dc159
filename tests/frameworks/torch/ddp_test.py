"""DDP training of examples/pytorch/train_ddp.py on 4 ranks under mpirun,
once over gloo and once over silk: the losses must agree (within float
tolerance) at every step, and within each run every replica must end with the
same parameters.

With --vcluster REPO the ranks (8) run across the two regions of the
virtual cluster (brought up and down here; root only, else exit 77), so the
silk run takes its hierarchical path over the emulated WAN.

Usage: ddp_test.py PATH/TO/train_ddp.py [--steps N] [--vcluster REPO]
"""
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import launch  # noqa: E402

def train(script, backend, steps, out_dir, repo):
    path = os.path.join(out_dir, f"{backend}.json")
    argv = [script, "--backend", backend, "--steps", str(steps), "--json", path]
    if repo:
        code, output = launch.vcluster(repo, 8, argv, timeout=120)
    else:
        code, output = launch.mpirun(4, argv, timeout=120)
    print(f"----- {backend} (mpirun exit code {code})\n{output.strip()}")
    if code != 0 or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def main():
    script = sys.argv[1]
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 20
    repo = sys.argv[sys.argv.index("--vcluster") + 1] if "--vcluster" in sys.argv else None
    failures = []
    if repo:
        if os.geteuid() != 0:
            print("skipped: the virtual cluster needs root")
            return 77
        vcluster = os.path.join(repo, "cluster", "vcluster")
        subprocess.run([vcluster, "down"], capture_output=True)
        up = subprocess.run([vcluster, "up"], capture_output=True, text=True)
        if up.returncode != 0:
            print(up.stdout + up.stderr + "\nFAILED: vcluster up")
            return 1
    try:
        with tempfile.TemporaryDirectory() as out_dir:
            os.chmod(out_dir, 0o755)
            runs = {backend: train(script, backend, steps, out_dir, repo) for backend in ("gloo", "silk")}
    finally:
        if repo:
            subprocess.run([vcluster, "down"], capture_output=True)
    for backend, run in runs.items():
        if run is None:
            failures.append(f"the {backend} run failed")
        elif len(run["steps"]) != steps:
            failures.append(f"the {backend} run has {len(run['steps'])} steps, expected {steps}")
        elif len(set(run["param_checksums"])) != 1:
            failures.append(f"{backend}: replicas differ at the end: {run['param_checksums']}")
    if not failures:
        gloo, silk = runs["gloo"]["steps"], runs["silk"]["steps"]
        for a, b in zip(gloo, silk):
            if not math.isclose(a["loss"], b["loss"], rel_tol=1e-4, abs_tol=1e-6):
                failures.append(f"step {a['step']}: loss {a['loss']!r} (gloo) vs {b['loss']!r} (silk)")
        first, last = silk[0]["loss"], silk[-1]["loss"]
        if not last < first:
            failures.append(f"silk: the loss did not fall ({first} -> {last})")
        print(f"step time (median): gloo {runs['gloo']['median_step_time_s'] * 1e3:.2f} ms, "
              f"silk {runs['silk']['median_step_time_s'] * 1e3:.2f} ms")
    for failure in failures:
        print("FAILED:", failure)
    print("PASSED" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
