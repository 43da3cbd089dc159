"""Named WAN link profiles: the kinds of link Silk meets outside its own
emulator's default (a one-BDP drop-tail queue, no loss), applied to a running
virtual cluster's link between two regions.

Every profile starts from the link as the spec declares it (rate, round trip),
then changes one thing. `kernel` moves the rate limit from silk-wanem into the
kernel (a `tbf` qdisc on each gateway's wan0), so that results do not rest on
one emulator's code.
"""

from . import wanem
from .common import in_netns, run
from .topology import TUN

# name: (what it is, settings for both directions, settings for region_b -> region_a only)
def _profiles(rate_bps, rtt_ms):
    bdp = int(rate_bps / 8 * rtt_ms / 1e3)
    return {
        "spec": ("the link as the spec declares it: a one-BDP drop-tail queue", [], []),
        "shallow": ("a drop-tail queue of a quarter BDP", [f"queue={bdp // 4}"], []),
        "deep": ("a drop-tail queue of four BDP", [f"queue={bdp * 4}"], []),
        "policer": ("a policer at the rate, burst a tenth of a BDP, no queue", [f"policer={bdp // 10}"], []),
        "loss-0.01": ("0.01 % random loss", ["loss=0.0001"], []),
        "loss-1": ("1 % random loss", ["loss=0.01"], []),
        "jitter": ("one-way delay +-2 ms, never reordering", ["jitter=2ms"], []),
        "asymmetric": ("the way back at half the rate", [], [f"rate={int(rate_bps // 2)}"]),
        "kernel": ("the rate shaped by the kernel (tbf on each gateway's wan0, a one-BDP limit); "
                   "silk-wanem only delays", ["rate=unlimited"], []),
    }


NAMES = list(_profiles(1e9, 40))


def describe(name, rate_bps=1e9, rtt_ms=40):
    return _profiles(rate_bps, rtt_ms)[name][0]


def apply(topology, name, region_a, region_b):
    """Resets the link between the two regions to its spec, then applies profile `name`. Returns its description."""
    link = topology.link(region_a, region_b)
    table = _profiles(link.rate_bps, link.rtt_ms)
    if name not in table:
        raise ValueError(f"unknown link profile {name!r} (known: {', '.join(table)})")
    what, both, back = table[name]
    rate = link.rate_bps if link.rate_bps > 0 else "unlimited"
    wanem.command(f"set {region_a} {region_b} rate={rate} rtt={link.rtt_ms:g}ms loss={link.loss:g} "
                  f"jitter={link.jitter_ms:g}ms queue=0 policer=0")
    for region in (region_a, region_b):
        gateway = topology.region(region).netns
        run(in_netns(gateway, ["tc", "qdisc", "del", "dev", TUN, "root"]), check=False)
        if name == "kernel" and link.rate_bps > 0:
            bdp = max(int(link.rate_bps / 8 * link.rtt_ms / 1e3), 64 * link.mtu)
            run(in_netns(gateway, ["tc", "qdisc", "add", "dev", TUN, "root", "tbf", "rate", f"{int(link.rate_bps)}bit",
                                   "burst", str(max(64 * 1024, int(link.rate_bps / 8 / 1000))), "limit", str(bdp)]))
    if both:
        wanem.command(f"set {region_a} {region_b} {' '.join(both)}")
    if back:
        wanem.command(f"set {region_b}>{region_a} {' '.join(back)}")
    return what
