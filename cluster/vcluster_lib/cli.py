"""The vcluster command line: up, down, status, run, cut, heal, link."""

import argparse
import json
import os
import sys

from . import elastic, mpi, network, probe, profiles, topology, wanem
from .common import DEFAULT_SPEC, Lock, VclusterError, ensure_commands, log, read_state, require_root

USAGE = """vcluster COMMAND [options]

  up [SPEC]                  start a virtual cluster (default spec: cluster/specs/xinjiang-chongqing.textproto)
  down                       remove it, also after a crash; safe to run twice
  status [--quick] [--json]  show links and emulator counters, and measure round trip and throughput
  run [--timeout S] -- ARGS  run `mpirun ARGS` across the virtual nodes (e.g. -- -np 8 hostname)
  run --elastic [--restart-delay S | --no-restart] [--home-region R] [--port P] [--timeout S]
      -- -np N [-x VAR[=value]] PROGRAM ARGS
                             an elastic job without mpirun: silk-coordinator on the home region's first node,
                             N ranks (SILK_ELASTIC=1, RANK = member id); a rank that dies is restarted after
                             the delay (default 5 s) while the others keep running
  cut REGION REGION          drop every packet between two regions (connections stay open)
  heal REGION REGION         let packets pass again
  link REGION REGION [--rtt 80ms] [--rate 300mbit|unlimited] [--loss 0.1%%] [--jitter 1ms] [--queue BYTES]
                     [--policer BURST_BYTES] [--one-way]
                             change a WAN link while the cluster runs (--one-way: REGION -> REGION only;
                             --policer: drop above the rate instead of queueing, 0: queue again)
  link REGION REGION --profile NAME
                             reset the link to its spec, then apply a named profile (--profile list: the names)
"""


def current_topology():
    state = read_state()
    if not state or not state.get("spec"):
        raise VclusterError("no virtual cluster is up (run `vcluster up` first)")
    return topology.load(state["spec"])


def cmd_up(args):
    ensure_commands(["ip", "unshare"])
    spec = topology.load(args.spec or DEFAULT_SPEC)
    with Lock():
        network.down(quiet=True)  # a stale or crashed cluster goes first
        try:
            network.up(spec)
        except BaseException:
            log("bringing the cluster up failed; cleaning up")
            network.down(quiet=True)
            raise
    nodes = ", ".join(f"{n.name} ({n.region}, {n.address})" for n in spec.nodes())
    print(f"virtual cluster {spec.name!r} is up: {nodes}")
    return 0


def cmd_down(args):
    with Lock():
        network.down()
    return 0


def describe_direction(link):
    rate = "unlimited" if link["rate_bps"] == 0 else f"{link['rate_bps'] / 1e6:g} Mbit/s"
    state = "CUT" if link["cut"] else "up"
    return (f"{link['from']} -> {link['to']}: {state}, {rate}, rtt {link['rtt_ms']:g} ms, "
            f"jitter {link['jitter_ms']:g} ms, loss {link['loss'] * 100:g}%, mtu {link['mtu']}, "
            f"queue {link['queue_limit_bytes']} B; delivered {link['delivered_packets']} packets "
            f"({link['delivered_bytes']} B); dropped {link['dropped_queue']} queue, {link['dropped_loss']} loss, "
            f"{link['dropped_cut']} cut; emulator late by {link['mean_late_us']:.0f} us on average, "
            f"{link['max_late_us']:.0f} us at most")


def cmd_status(args):
    spec = current_topology()
    emulator = wanem.stats()
    report = {"name": spec.name, "spec": spec.spec_path, "emulator": emulator, "paths": []}
    if not args.quick:
        for link in spec.links:
            source, target = spec.region(link.a).nodes[0], spec.region(link.b).nodes[0]
            measured = probe.measure_path(source, target)
            report["paths"].append(dict(kind="WAN", name=f"{link.a} -> {link.b}", source=source.name,
                                        target=target.name, configured_rtt_ms=link.rtt_ms,
                                        configured_rate_bps=link.rate_bps, **measured))
        for region in spec.regions:
            if len(region.nodes) >= 2:
                measured = probe.measure_path(region.nodes[0], region.nodes[1])
                report["paths"].append(dict(kind="LAN", name=region.name, source=region.nodes[0].name,
                                            target=region.nodes[1].name, **measured))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"virtual cluster {spec.name!r} from {spec.spec_path}")
    for region in spec.regions:
        members = ", ".join(f"{n.name} {n.address} ({n.slots} slots)" for n in region.nodes)
        print(f"  region {region.name} {region.subnet}, gateway {region.gateway}: {members}")
    print("WAN emulator:")
    for link in emulator["links"]:
        print("  " + describe_direction(link))
    if report["paths"]:
        print("measured with silk-netprobe (median TCP round trip of 20 pings; "
              "steady TCP throughput of 4 flows over 3 s):")
        print(f"  {'path':<40} {'round trip':>12} {'throughput':>16}")
        for path in report["paths"]:
            name = f"{path['kind']} {path['name']} ({path['source']}->{path['target']})"
            print(f"  {name:<40} {path['rtt_ms']:>9.2f} ms {path['throughput_bps'] / 1e6:>11.1f} Mbit/s")
    return 0


def cmd_run(args):
    ensure_commands(["unshare"] if args.elastic else ["mpirun", "unshare"])
    user_args = args.mpirun_args
    if user_args and user_args[0] == "--":
        user_args = user_args[1:]
    if args.elastic:
        return elastic.run_elastic(current_topology(), user_args, args.timeout, args.restart_delay,
                                   not args.no_restart, args.home_region, args.port)
    if args.home_region or args.no_restart or args.restart_delay is not None or args.port is not None:
        raise VclusterError("--restart-delay, --no-restart, --home-region and --port go with run --elastic")
    return mpi.run_mpi(current_topology(), user_args, args.timeout)


def checked_pair(args):
    spec = current_topology()
    spec.link(args.region_a, args.region_b)  # names the regions that exist when one does not
    return spec


def cmd_cut(args):
    checked_pair(args)
    wanem.command(f"cut {args.region_a} {args.region_b}")
    print(f"cut the link {args.region_a} <-> {args.region_b}")
    return 0


def cmd_heal(args):
    checked_pair(args)
    wanem.command(f"heal {args.region_a} {args.region_b}")
    print(f"healed the link {args.region_a} <-> {args.region_b}")
    return 0


def cmd_link(args):
    if args.profile == "list":
        for name in profiles.NAMES:
            print(f"{name:<12} {profiles.describe(name)}")
        return 0
    spec = checked_pair(args)
    if args.profile:
        try:
            what = profiles.apply(spec, args.profile, args.region_a, args.region_b)
        except ValueError as error:
            raise VclusterError(str(error))
        print(f"link {args.region_a} <-> {args.region_b}: profile {args.profile} ({what})")
        return 0
    settings = [f"{key}={value}" for key, value in
                (("rtt", args.rtt), ("rate", args.rate), ("loss", args.loss), ("jitter", args.jitter),
                 ("queue", args.queue), ("policer", args.policer)) if value is not None]
    if not settings:
        raise VclusterError("vcluster link needs at least one of --rtt, --rate, --loss, --jitter, --queue, --policer, "
                            "--profile")
    pair = f"{args.region_a}>{args.region_b}" if args.one_way else f"{args.region_a} {args.region_b}"
    wanem.command(f"set {pair} {' '.join(settings)}")
    print(f"link {args.region_a} {'->' if args.one_way else '<->'} {args.region_b}: {' '.join(settings)}")
    return 0


def parser():
    root = argparse.ArgumentParser(prog="vcluster", usage=USAGE)
    commands = root.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up")
    up.add_argument("spec", nargs="?")
    up.set_defaults(handler=cmd_up)
    commands.add_parser("down").set_defaults(handler=cmd_down)
    status = commands.add_parser("status")
    status.add_argument("--quick", action="store_true", help="do not measure, only show links and counters")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    run = commands.add_parser("run")
    run.add_argument("--timeout", type=float, default=3600, help="stop mpirun after this many seconds")
    run.add_argument("--elastic", action="store_true", help="start ranks directly and restart those that die")
    run.add_argument("--restart-delay", type=float, help="--elastic: seconds before a dead rank starts again (5)")
    run.add_argument("--no-restart", action="store_true", help="--elastic: never restart a rank")
    run.add_argument("--home-region", help="--elastic: region whose first node runs the coordinator (the first)")
    run.add_argument("--port", type=int, help=f"--elastic: the coordinator's port ({elastic.DEFAULT_PORT})")
    run.add_argument("mpirun_args", nargs=argparse.REMAINDER)
    run.set_defaults(handler=cmd_run)
    for name, handler in (("cut", cmd_cut), ("heal", cmd_heal), ("link", cmd_link)):
        command = commands.add_parser(name)
        command.add_argument("region_a")
        command.add_argument("region_b")
        if name == "link":
            for option in ("--rtt", "--rate", "--loss", "--jitter", "--queue", "--policer", "--profile"):
                command.add_argument(option)
            command.add_argument("--one-way", action="store_true")
        command.set_defaults(handler=handler)
    return root


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        require_root()
        return args.handler(args)
    except VclusterError as error:
        print(f"vcluster {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vcluster {args.command}: interrupted", file=sys.stderr)
        return 130
