#!/usr/bin/env bash
# Installs the built Silk into a scratch prefix, then builds and runs a
# consumer project with find_package(Silk), and the C example with pkg-config.
set -euo pipefail
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
export MASTER_ADDR=127.0.0.1 MASTER_PORT=$((20000 + RANDOM % 20000)) RANK=0 WORLD_SIZE=1
export LD_LIBRARY_PATH="$scratch/prefix/lib:${LD_LIBRARY_PATH:-}"

cmake -S "$source_dir/tests/install/consumer" -B "$scratch/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
"$scratch/consumer/consumer"

export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig"
cc "$source_dir/examples/c/allreduce.c" -o "$scratch/c_example" $(pkg-config --cflags --libs silk)
MASTER_PORT=$((MASTER_PORT + 1)) "$scratch/c_example"
echo "install check passed"
