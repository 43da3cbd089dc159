#!/usr/bin/env bash
# Installs what Silk needs from Debian (only what is missing), then configures
# and builds it. Used by both README commands; safe to run again.
#
#   cmake/setup.sh [--build-dir DIR] [--sanitize] [targets...]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$repo/build"
cmake_args=()
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --sanitize) cmake_args+=(-DSILK_SANITIZE=ON); shift ;;
    *) targets+=("$1"); shift ;;
  esac
done

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libabsl-dev libprotobuf-dev protobuf-compiler libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin
  iproute2 iperf3 python3 util-linux procps
  libgloo-dev libopenblas-dev gnuplot-nox
  python3-dev python3-torch libtorch-dev pybind11-dev
  fortunes  # the text examples/pytorch/train_lm.py trains on
  clang libclang-rt-14-dev  # the fuzz targets (tests/fuzz): clang-14 and its libFuzzer runtime
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" >/dev/null
fi
cmake --build "$build_dir" -j "$jobs" ${targets[@]:+--target "${targets[@]}"}
