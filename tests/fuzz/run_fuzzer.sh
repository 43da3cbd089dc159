#!/usr/bin/env bash
# Runs one fuzz target for a few seconds over a copy of its seed corpus, so
# the corpus in the repository is never modified. Used by CTest (fuzz_*).
#
#   run_fuzzer.sh FUZZER CORPUS_DIR ARTIFACT_DIR SECONDS [libFuzzer flags...]
#
# A crash, leak, sanitizer report or slow input (over -timeout seconds) fails
# the test; the input that did it is kept in ARTIFACT_DIR.
set -euo pipefail
fuzzer=$1 corpus=$2 artifacts=$3 seconds=$4
shift 4
work=$(mktemp -d "${TMPDIR:-/tmp}/silk-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -R "$corpus/." "$work/"
mkdir -p "$artifacts"
# -seed=1: the same mutations on every run. -timeout=5 and not 1: under a
# loaded CI machine a 1 ms input must not read as a hang (docs/fuzzing.md).
"$fuzzer" -seed=1 -max_total_time="$seconds" -timeout=5 -max_len=4096 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$work"
