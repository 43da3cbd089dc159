#!/usr/bin/env bash
# Two ranks in two network namespaces of one machine: the same host name, no
# SILK_NODE. They are two nodes (their NodeIdentity differs), so each dials
# the other's address over the veth pair between them, not 127.0.0.1 inside
# its own namespace; the all-reduces must pass within a few seconds.
#
#   same_hostname_netns_test.sh COLLECTIVE_CHECK
# Exit 77 (skipped) without root or network namespaces.
set -u
check=$1
[ "$(id -u)" -eq 0 ] && command -v ip >/dev/null || { echo "SKIP: needs root and ip"; exit 77; }
tag=h4$$
a=silk-$tag-a b=silk-$tag-b
subnet=172.31.$(( $$ % 200 + 20 ))
cleanup() { ip netns del "$a" 2>/dev/null; ip netns del "$b" 2>/dev/null; }
trap cleanup EXIT
ip netns add "$a" && ip netns add "$b" || { echo "SKIP: cannot create network namespaces"; exit 77; }
ip link add "va$tag" type veth peer name "vb$tag" || { echo "SKIP: cannot create a veth pair"; exit 77; }
ip link set "va$tag" netns "$a" && ip link set "vb$tag" netns "$b" || exit 1
ip -n "$a" addr add "$subnet.1/24" dev "va$tag" && ip -n "$b" addr add "$subnet.2/24" dev "vb$tag" || exit 1
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "va$tag" up && ip -n "$b" link set "vb$tag" up || exit 1

out=$(mktemp -d)
start=$(date +%s.%N)
common=(env -u SILK_NODE MASTER_ADDR="$subnet.1" MASTER_PORT=29400 WORLD_SIZE=2 SILK_STARTUP_TIMEOUT=20s SILK_TIMEOUT=20s)
ip netns exec "$a" "${common[@]}" RANK=0 SILK_SOCKET_IFNAME="va$tag" "$check" --counts 1000,65537 >"$out/0" 2>&1 &
ip netns exec "$b" "${common[@]}" RANK=1 SILK_SOCKET_IFNAME="vb$tag" "$check" --counts 1000,65537 >"$out/1" 2>&1 &
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
took=$(echo "$(date +%s.%N) - $start" | bc)
host=$(hostname)
for r in 0 1; do echo "--- rank $r"; cat "$out/$r"; done
echo "took ${took}s"
grep -q "OK rank 0/2 node $host local_rank 0" "$out/0" || { echo "FAILED: rank 0"; status=1; }
grep -q "OK rank 1/2 node $host#2 local_rank 0" "$out/1" || { echo "FAILED: rank 1 is not on a node of its own"; status=1; }
[ "$(echo "$took < 10" | bc)" -eq 1 ] || { echo "FAILED: took ${took}s"; status=1; }
rm -rf "$out"
[ $status -eq 0 ] && echo PASSED
exit $status
