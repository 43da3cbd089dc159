"""Bytes this process sent across regions, for any torch.distributed backend.

Reads TCP_INFO's tcpi_bytes_acked (payload bytes the peer acknowledged,
retransmissions not counted twice) from every TCP socket the process holds
(/proc/self/fd), and counts those whose two ends lie in different regions
of the cluster spec (SILK_CLUSTER_SPEC, set by `cluster/vcluster run`: each
region's `subnet`). Gloo's sockets, Silk's lanes and the rendezvous store's
connection are all counted alike. Without a spec, `available` is False.
"""
import ipaddress
import os
import re
import socket
import struct

_TCP_INFO_BYTES_ACKED = 120  # offset of tcpi_bytes_acked (u64) in struct tcp_info (Linux >= 4.1)


def _regions(spec_path):
    """[(network, region name)] from the spec's `regions { name: .. subnet: .. }`."""
    with open(spec_path) as f:
        text = f.read()
    found = []
    for block in re.split(r"\bregions\s*\{", text)[1:]:
        name = re.search(r'\bname:\s*"([^"]+)"', block)
        subnet = re.search(r'\bsubnet:\s*"([^"]+)"', block)
        if name and subnet:
            found.append((ipaddress.ip_network(subnet.group(1)), name.group(1)))
    return found


class WanCounter:
    def __init__(self, spec_path=None):
        spec_path = spec_path or os.environ.get("SILK_CLUSTER_SPEC")
        self.networks = _regions(spec_path) if spec_path and os.path.exists(spec_path) else []
        self.available = len({name for _, name in self.networks}) > 1
        self._closed = 0  # bytes of sockets seen before that are gone now
        self._last = {}  # (fd, local, peer) -> bytes acked at the last reading

    def _region(self, address):
        ip = ipaddress.ip_address(address)
        return next((name for net, name in self.networks if ip in net), None)

    def _sockets(self):
        """(fd, local address, peer address, bytes acked) of each connected TCP socket."""
        for entry in os.listdir("/proc/self/fd"):
            try:
                if not os.readlink(f"/proc/self/fd/{entry}").startswith("socket:"):
                    continue
                s = socket.socket(fileno=os.dup(int(entry)))
            except (OSError, ValueError):
                continue
            try:
                if s.family != socket.AF_INET or s.type != socket.SOCK_STREAM:
                    continue
                local, peer = s.getsockname()[0], s.getpeername()[0]
                info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
                if len(info) >= _TCP_INFO_BYTES_ACKED + 8:
                    yield int(entry), local, peer, struct.unpack_from("Q", info, _TCP_INFO_BYTES_ACKED)[0]
            except OSError:
                pass  # a listening or closed socket: no peer
            finally:
                s.close()

    def local_region(self):
        """This node's region: that of the local end of any of its connections."""
        for _, local, _, _ in self._sockets():
            region = self._region(local)
            if region:
                return region
        return os.environ.get("SILK_REGION", "default")

    def sent(self):
        """Bytes sent across regions so far by this process (0 without a spec)."""
        if not self.available:
            return 0
        now = {}
        for fd, local, peer, acked in self._sockets():
            a, b = self._region(local), self._region(peer)
            if a and b and a != b:
                now[(fd, local, peer)] = acked
        self._closed += sum(v for k, v in self._last.items() if k not in now)
        self._last = now
        return self._closed + sum(now.values())
