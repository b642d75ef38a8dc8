"""Shared settings and small helpers of the VM lab (paths, addresses, commands)."""
import fcntl
import ipaddress
import os
import subprocess
import sys
from contextlib import contextmanager

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(LAB_DIR, "..", "..", ".."))
CACHE = os.path.abspath(os.environ.get("LAB_CACHE", os.path.join(REPO_ROOT, ".cache", "lab")))
RUN_DIR = os.path.join(CACHE, "run")
IMAGES_DIR = os.path.join(CACHE, "images")
SSH_DIR = os.path.join(CACHE, "ssh")
SSH_KEY = os.path.join(SSH_DIR, "id_ed25519")
SSH_CONFIG = os.path.join(CACHE, "ssh_config")
INVENTORY = os.path.join(CACHE, "inventory.yml")

NS = os.environ.get("LAB_NS", "agility-lab")
BRIDGE = "br0"
LINK4 = ipaddress.ip_network("198.18.0.0/24")
LINK6 = ipaddress.ip_network("2001:db8:0:1::/64")
GW4 = "198.18.0.1"
GW6 = "2001:db8:0:1::1"
GUEST_IFACE = "ens5"  # virtio-net-pci at addr=0x5
VM_MEM_MIB = int(os.environ.get("LAB_VM_MEM", "384"))
MAX_POPS = 8

# Anycast pools routed from the namespace ("the Internet") to one PoP.
POOLS = {
    "active": {"ipv4": "198.18.16.0/20", "ipv6": "2001:db8:100::/44"},
    "standby": {"ipv4": "198.18.32.0/20", "ipv6": "2001:db8:200::/44"},
    "dedicated": {"ipv4": "198.18.48.0/20", "ipv6": "2001:db8:300::/44"},
}


def pool_prefixes():
    return [p for pool in POOLS.values() for p in (pool["ipv4"], pool["ipv6"])]


def pop_name(i):
    return "pop%d" % i


def pop_index(name):
    if not name.startswith("pop") or not name[3:].isdigit():
        raise SystemExit("labctl: not a PoP name: %r (expected pop1..popN)" % name)
    return int(name[3:])


def pop_addrs(i):
    """IPv4/IPv6 link addresses of PoP i: 198.18.0.(10+i) and 2001:db8:0:1::(10+i)."""
    return {
        "ipv4": "198.18.0.%d" % (10 + i),
        "ipv6": "2001:db8:0:1::%d" % (10 + i),
        "mac": "52:54:00:12:00:%02x" % (10 + i),
        "tap": "tap-pop%d" % i,
    }


def log(msg):
    print("labctl: " + msg, file=sys.stderr, flush=True)


def run(cmd, check=True, capture=False, **kw):
    if capture:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("universal_newlines", True)
    return subprocess.run(cmd, check=check, **kw)


def ns_run(cmd, check=True, capture=False, **kw):
    return run(["ip", "netns", "exec", NS] + list(cmd), check=check, capture=capture, **kw)


def ns_exists():
    out = run(["ip", "netns", "list"], capture=True).stdout
    return any(line.split()[0] == NS for line in out.splitlines() if line.strip())


@contextmanager
def lock(name="lab"):
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def require_root():
    if os.geteuid() != 0:
        raise SystemExit("labctl: needs root (network namespaces, debootstrap, taps)")
