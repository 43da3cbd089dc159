#!/usr/bin/env bash
# Two-region training on the virtual cluster: 8 ranks (4 in Xinjiang, 4 in
# Chongqing, 40 ms apart) train the example MLP for a few steps with each
# policy. Checks exit codes, that the loss is finite and decreases, and that
# Silk's policies sent bytes over the WAN. With two CPUs or more, one more
# delayed run places the threads as cluster/demo does (Silk's on the first
# CPU, compute on the last) and checks that they ran there. Needs root; exits
# 77 (skip) without. Last, sync with the flat ring across the two regions must
# give the same losses, bit for bit, as inside one region.
#
#   vcluster_train_test.sh REPO SILK_TRAIN
set -uo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: the virtual cluster needs root"
  exit 77
fi
repo=$1
train=$2
vcluster="$repo/cluster/vcluster"
out=$(mktemp -d)
cleanup() {
  "$vcluster" down >/dev/null 2>&1
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$vcluster" down >/dev/null 2>&1
if ! "$vcluster" up >"$out/up.log" 2>&1; then
  cat "$out/up.log"
  echo "FAIL: vcluster up"
  exit 1
fi
failures=0
cpus=($(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))'))
runs=(sync delayed diloco mpi)
[ ${#cpus[@]} -ge 2 ] && runs+=(delayed-placed)
for run in "${runs[@]}"; do
  policy=${run%-placed}
  placement=()
  expect_cpus=""
  if [ "$run" = delayed-placed ]; then
    placement=(-x "SILK_CPUS=${cpus[0]}")
    expect_cpus="${cpus[-1]} ${cpus[0]}"  # compute, silk-*
  fi
  "$vcluster" run --timeout 90 -- -np 8 ${placement[@]+"${placement[@]}"} "$train" --policy "$policy" --steps 30 \
    --hidden 256 --batch 64 --H 4 --lr 0.05 --json "$out/$run.json" --quiet \
    ${expect_cpus:+--compute-cpus "${cpus[-1]}"}
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL: $run: exit status $rc"
    failures=$((failures + 1))
    continue
  fi
  if ! EXPECT_CPUS="$expect_cpus" python3 - "$out/$run.json" <<'PY'; then
import json, math, os, sys
r = json.load(open(sys.argv[1]))
losses = [e[1] for e in r["losses"]]
problems = []
if r["ranks"] != 8 or r["regions"] != 2: problems.append(f"ranks {r['ranks']} regions {r['regions']}, want 8 and 2")
if not all(math.isfinite(l) for l in losses) or r["eval_loss"] is None: problems.append("a loss is not finite")
first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
if not last < first: problems.append(f"loss did not decrease: first steps {first:.4f}, last steps {last:.4f}")
if r["policy"] != "mpi" and not (r["wan_bytes_per_step"] or 0) > 0: problems.append("no bytes crossed the WAN")
if os.environ["EXPECT_CPUS"]:
    compute, silk = os.environ["EXPECT_CPUS"].split()
    if (r["compute_thread_cpus"], r["silk_thread_cpus"]) != (compute, silk):
        problems.append(f"threads ran on compute {r['compute_thread_cpus']}, silk-* {r['silk_thread_cpus']}; "
                        f"placed on {compute} and {silk}")
print(f"policy {r['policy']}: loss {first:.4f} -> {last:.4f}, held-out {r['eval_loss']}, step {r['step_time_s']*1e3:.1f} ms, "
      f"WAN {r['wan_bytes_per_step']} B/step, threads on CPUs: compute {r['compute_thread_cpus']}, silk-* {r['silk_thread_cpus']}"
      + ("" if not problems else "  FAIL: " + "; ".join(problems)))
sys.exit(1 if problems else 0)
PY
    failures=$((failures + 1))
  fi
done

# sync across two regions is the one-region job: with the same order of float
# additions (the flat ring, forced on both), the same losses to the bit.
same_order() {  # name
  "$vcluster" run --timeout 90 -- -np 8 -x SILK_ALGO=ring "$train" --policy sync --steps 20 --hidden 256 --batch 64 \
    --json "$out/$1.json" --quiet
}
if ! same_order two-regions-ring || ! "$vcluster" up "$repo/cluster/specs/xinjiang-only.textproto" >"$out/up.log" 2>&1 ||
   ! same_order one-region-ring; then
  echo "FAIL: the same-order sync runs did not complete"
  failures=$((failures + 1))
elif ! python3 - "$out/two-regions-ring.json" "$out/one-region-ring.json" <<'PY'; then
import json, sys
two, one = (json.load(open(f)) for f in sys.argv[1:])
print(f"sync with the ring in {two['regions']} regions: final loss {two['final_loss']}; in {one['regions']}: {one['final_loss']}")
ok = (two["regions"], one["regions"]) == (2, 1) and two["global_losses"] == one["global_losses"]
if not ok: print("FAIL: the two-region sync job's losses are not the one-region job's")
sys.exit(0 if ok else 1)
PY
  failures=$((failures + 1))
fi
[ $failures -eq 0 ] && echo "all policies trained across two regions" && exit 0
echo "FAIL: $failures run(s) failed"
exit 1
