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

# find_package in a C++20 and a C++17 project: Silk::silk carries its C++20 requirement.
for std in 20 17; do
  cmake -S "$source_dir/tests/install/consumer" -B "$scratch/consumer$std" -G Ninja \
    -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_CXX_STANDARD=$std >/dev/null
  cmake --build "$scratch/consumer$std" >/dev/null
  MASTER_PORT=$((MASTER_PORT + std)) "$scratch/consumer$std/consumer"
done

# pkg-config: C, C++20, and C++17, which must fail with a message naming C++20.
export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig"
cc "$source_dir/examples/c/allreduce.c" -o "$scratch/c_example" $(pkg-config --cflags --libs silk)
MASTER_PORT=$((MASTER_PORT + 1)) "$scratch/c_example"
consumer_cc="$source_dir/tests/install/consumer/main.cc"
c++ -std=c++20 "$consumer_cc" -o "$scratch/cxx20" \
  $(pkg-config --cflags --libs silk absl_status absl_statusor absl_synchronization absl_time)
MASTER_PORT=$((MASTER_PORT + 2)) "$scratch/cxx20"
if c++ -std=c++17 -c "$consumer_cc" -o "$scratch/cxx17.o" $(pkg-config --cflags silk) 2>"$scratch/cxx17.log"; then
  echo "a C++17 build against silk.pc compiled; expected the C++20 error" >&2
  exit 1
fi
grep -q "needs C++20" "$scratch/cxx17.log" || { echo "C++17 error does not name C++20:" >&2; head -5 "$scratch/cxx17.log" >&2; exit 1; }

# Installed programs run from bin/ and answer --help.
for program in allreduce_perf silk-demo silk-c-example; do
  if [[ -x "$scratch/prefix/bin/$program" ]]; then
    "$scratch/prefix/bin/$program" --help >/dev/null || { echo "$program --help failed" >&2; exit 1; }
  fi
done
if [[ -x "$build_dir/examples/allreduce_perf" && ! -x "$scratch/prefix/bin/allreduce_perf" ]]; then
  echo "allreduce_perf was built but not installed" >&2
  exit 1
fi
echo "install check passed"
