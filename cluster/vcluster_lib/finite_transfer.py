"""One finite transfer at a time over several TCP flows (BBR), as one all-reduce's
WAN exchange is, unlike iperf3's stream: the sender moves BYTES in all (split
evenly over the flows, each paced at its share of PACE bytes/s if given) and
waits for the receiver's one-byte reply after the last byte arrived; it prints
each repetition's time in ms. A transfer that ends pays for repairing the
losses of its last round trip, which a stream never shows. Stdlib only: it runs
inside the virtual cluster's namespaces (bench_links.finite_table).

  finite_transfer.py serve ADDR PORT
  finite_transfer.py send ADDR PORT FLOWS BYTES REPS [PACE]
"""
import socket
import sys
import threading
import time

SO_MAX_PACING_RATE = 47


# Every socket wait ends: a stalled link fails the run instead of hanging it.
TIMEOUT_S = 120


def receive(conn, count):
    buffer = memoryview(bytearray(1 << 20))
    while count > 0:
        got = conn.recv_into(buffer[:min(count, len(buffer))])
        if got == 0:
            raise EOFError("peer went away mid-transfer")
        count -= got


def read_exact(conn, count):
    """The next `count` bytes (a stream may deliver a short message in pieces)."""
    data = b""
    while len(data) < count:
        piece = conn.recv(count - len(data))
        if not piece:
            raise EOFError("peer went away before its header")
        data += piece
    return data


def all_at_once(target, conns, arg):
    """target(conn, arg) on every flow at once; raises the first flow's error (a timed-out
    flow must fail the repetition, not leave it timed as if complete)."""
    errors = []

    def run(conn):
        try:
            target(conn, arg)
        except Exception as e:  # noqa: BLE001 - re-raised below, on the calling thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def serve(addr, port):
    listener = socket.create_server((addr, port), backlog=64)
    first, _ = listener.accept()
    flows, per_flow, reps = (int(x) for x in read_exact(first, 64).decode().split())
    conns = [first] + [listener.accept()[0] for _ in range(flows - 1)]
    for _ in range(reps):
        all_at_once(receive, conns, per_flow)
        first.sendall(b"k")


def send(addr, port, flows, total, reps, pace=0):
    per_flow = total // flows
    conns = []
    for i in range(flows):
        conn = socket.create_connection((addr, port))
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
        if pace:
            conn.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, pace // flows)
        if i == 0:
            conn.sendall(f"{flows} {per_flow} {reps}".ljust(64).encode())
        conns.append(conn)
    data = memoryview(bytearray(per_flow))
    for _ in range(reps):
        time.sleep(0.3)  # idle between calls, as between all-reduces
        start = time.monotonic()
        all_at_once(lambda c, d: c.sendall(d), conns, data)
        conns[0].recv(1)
        print("%.1f" % ((time.monotonic() - start) * 1e3), flush=True)


if __name__ == "__main__":
    socket.setdefaulttimeout(TIMEOUT_S)
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        send(sys.argv[2], int(sys.argv[3]), *(int(x) for x in sys.argv[4:]))
