"""Shared helpers: running commands with timeouts, paths, the state directory, finding binaries."""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_DIR = os.path.join(REPO, "cluster")
DEFAULT_SPEC = os.path.join(CLUSTER_DIR, "specs", "xinjiang-chongqing.textproto")
LAUNCH_AGENT = os.path.join(CLUSTER_DIR, "vcluster-launch-agent")
STATE_DIR = "/run/silk-vcluster"
STATE_FILE = os.path.join(STATE_DIR, "state.json")
LOCK_FILE = "/run/silk-vcluster.lock"
CONTROL_SOCKET = os.path.join(STATE_DIR, "wanem.sock")
HOSTFILE = os.path.join(STATE_DIR, "hostfile")
NETNS_ETC = "/etc/netns"  # `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts
TOOLS = ("silk-spec", "silk-wanem", "silk-netprobe")


class VclusterError(Exception):
    """A failure with a message for the user; the CLI prints it and exits non-zero."""


def log(message):
    print(f"vcluster: {message}", file=sys.stderr, flush=True)


def run(args, timeout=30, check=True, capture=True, input_text=None):
    """Runs a command; returns stdout. Fails with the command, exit status and stderr."""
    try:
        result = subprocess.run(args, input=input_text, capture_output=capture, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VclusterError(f"command timed out after {timeout}s: {' '.join(args)}")
    except FileNotFoundError:
        raise VclusterError(f"command not found: {args[0]}")
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip() if capture else ""
        raise VclusterError(f"command failed (exit {result.returncode}): {' '.join(args)}: {detail}")
    return result.stdout if capture else ""


def in_netns(namespace, args):
    return ["ip", "netns", "exec", namespace] + list(args)


def require_root():
    if os.geteuid() != 0:
        raise VclusterError("needs root (it creates network namespaces, bridges and TUN devices); run it with sudo")


class Lock:
    """Serializes vcluster commands that change the machine; waits at most `timeout` seconds."""

    def __init__(self, timeout=120):
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        self.fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise VclusterError(f"another vcluster command held {LOCK_FILE} for over {self.timeout}s")
                time.sleep(0.1)

    def __exit__(self, *exc):
        os.close(self.fd)


def read_state():
    try:
        with open(STATE_FILE) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log(f"ignoring unreadable state file {STATE_FILE}: {error}")
        return {}


def write_state(state):
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    temporary = STATE_FILE + ".tmp"
    with open(temporary, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(temporary, STATE_FILE)


def build_dir():
    return os.path.abspath(os.environ.get("SILK_BUILD_DIR") or os.path.join(REPO, "build"))


def tool(name):
    """Path of a built Silk binary; builds the cluster tools when one is missing."""
    directory = build_dir()
    path = os.path.join(directory, "cluster", name)
    if os.access(path, os.X_OK):
        return path
    log(f"{path} is missing; building the cluster tools in {directory}")
    for command in (["cmake", "-S", REPO, "-B", directory, "-G", "Ninja"],
                    ["cmake", "--build", directory, "--target", *TOOLS]):
        if subprocess.run(command, timeout=3600).returncode != 0:
            raise VclusterError(f"building the cluster tools failed: {' '.join(command)}")
    if not os.access(path, os.X_OK):
        raise VclusterError(f"built the cluster tools but {path} is still missing")
    return path


def ensure_commands(commands):
    """Installs what the virtual cluster needs from Debian when it is missing."""
    packages = {"ip": "iproute2", "unshare": "util-linux", "mpirun": "openmpi-bin"}
    missing = sorted({packages[c] for c in commands if shutil.which(c) is None})
    if not missing:
        return
    log(f"installing {' '.join(missing)} with apt-get")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *missing]):
        if subprocess.run(command, timeout=900, stdout=subprocess.DEVNULL).returncode != 0:
            raise VclusterError(f"could not install {' '.join(missing)}: {' '.join(command)} failed")
