"""Starting and stopping silk-wanem, and talking to its control socket."""

import json
import os
import shlex
import signal
import socket
import subprocess
import time

from .common import CONTROL_SOCKET, STATE_DIR, VclusterError, tool
from .topology import GATEWAY_PREFIX, TUN

LOG_FILE = os.path.join(STATE_DIR, "wanem.log")


def command(line, timeout=5):
    """Sends one control command; returns the reply line. Errors name the socket and the command."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(CONTROL_SOCKET)
            client.sendall(line.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = client.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except (OSError, socket.timeout) as error:
            raise VclusterError(f"WAN emulator control socket {CONTROL_SOCKET}: command {line!r}: {error} "
                                "(is the virtual cluster up?)")
    reply = reply.decode().strip()
    if reply.startswith("error:"):
        raise VclusterError(f"WAN emulator refused {line!r}: {reply[6:].strip()}")
    return reply


def stats():
    return json.loads(command("stats"))


def start(topology):
    """Starts the emulator in its own session (it outlives this command); returns its pid once it answers."""
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(LOG_FILE, "ab") as log_file:
        process = subprocess.Popen(
            [tool("silk-wanem"), "--spec", topology.spec_path, "--control", CONTROL_SOCKET,
             "--netns-prefix", GATEWAY_PREFIX, "--tun", TUN, "--realtime", "--verbose"]
            + shlex.split(os.environ.get("SILK_WANEM_ARGS", "")),  # e.g. "--delivery-batch-us 0", for experiments
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise VclusterError(f"silk-wanem exited with status {process.returncode} at start: {tail(LOG_FILE)}")
        try:
            if command("ping", timeout=1) == "ok":
                return process.pid
        except VclusterError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise VclusterError(f"silk-wanem did not answer on {CONTROL_SOCKET} within 10s: {tail(LOG_FILE)}")
        time.sleep(0.05)


def is_emulator(pid):
    """True for a live silk-wanem serving this machine's virtual cluster (its control socket is ours)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return bool(args) and os.path.basename(args[0]) == b"silk-wanem" and CONTROL_SOCKET.encode() in args


def find_emulators():
    """Emulators of the virtual cluster, also one whose pid never reached the state file (a crash during `up`)."""
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and is_emulator(int(pid))]


def stop(pid):
    if not pid or not is_emulator(pid):
        return
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 3)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when we are its parent
            except ChildProcessError:
                pass
            if not is_emulator(pid):
                return
            time.sleep(0.05)
    raise VclusterError(f"silk-wanem (pid {pid}) did not stop")


def tail(path, lines=5):
    try:
        with open(path) as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
