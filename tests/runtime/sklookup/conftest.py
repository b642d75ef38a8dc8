"""Fixtures: a private bpffs and a fresh network namespace per test.

Every test runs in its own network namespace (the pytest main thread is moved
into it with unshare(CLONE_NEWNET) and moved back afterwards), with loopback
up; prefixes are routed locally with ``ip route add local PREFIX dev lo``.
The dispatcher state goes to a bpffs mounted just for this session, so tests
never touch /sys/fs/bpf.
"""
import ipaddress
import json
import os
import random
import select
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from agility_runtime.sklookup import netns as ns

CLI = [sys.executable, "-m", "agility_runtime.sklookup"]


def _have_root():
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture(scope="session")
def bpffs():
    if not _have_root():
        pytest.skip("needs root and iproute2")
    d = tempfile.mkdtemp(prefix="agility-bpffs-")
    r = subprocess.run(["mount", "-t", "bpf", "bpf", d], stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount bpffs: %s" % r.stderr.decode().strip())
    yield d
    subprocess.run(["umount", d], check=False)
    os.rmdir(d)


class Result(object):
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def json(self):
        return json.loads(self.out)


class Lab(object):
    """One network namespace with the dispatcher state in the session bpffs."""

    def __init__(self, bpffs, seed):
        self.bpffs = bpffs
        self.rng = random.Random(seed)
        self.sockets = []

    def sh(self, cmd):
        subprocess.run(cmd, shell=True, check=True)

    def route(self, prefix):
        net = ipaddress.ip_network(prefix)
        self.sh("ip %s route add local %s dev lo" % ("-6" if net.version == 6 else "-4", net))

    def cli(self, *args, **kw):
        env = dict(os.environ)
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env.update(kw.pop("env", {}))
        proc = subprocess.run(CLI + ["--bpffs", self.bpffs] + [str(a) for a in args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, env=env, timeout=60, check=False, **kw)
        return Result(proc)

    def ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        assert r.rc == 0, "agility-lookup %s failed: %s" % (" ".join(map(str, args)), r.err)
        return r

    def load(self):
        return self.ok("load", "--json")

    def load_bindings(self, bindings, dry_run=False):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"bindings": bindings}, f)
        try:
            args = ["load-bindings", f.name, "--json"] + (["--dry-run"] if dry_run else [])
            return self.ok(*args).json
        finally:
            os.unlink(f.name)

    def listener(self, proto="tcp", family=4, addr=None, port=0, reuseport=False):
        fam = socket.AF_INET if family == 4 else socket.AF_INET6
        typ = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(fam, typ)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((addr or ("127.0.0.1" if family == 4 else "::1"), port))
        if proto == "tcp":
            s.listen(4096)  # deep: the Python accept loops in the tests are slow
        self.sockets.append(s)
        return s

    def register(self, label, *socks):
        """Register through the pidfd_getfd path (register-pid)."""
        return self.ok("register-pid", label, os.getpid(), *[s.fileno() for s in socks], "--json")

    def register_systemd(self, label, socks, names=None, extra=()):
        """Register as systemd would pass them: fds 3.. with LISTEN_FDS."""
        redirs = " ".join("%d<&%d" % (3 + i, s.fileno()) for i, s in enumerate(socks))
        env = {"LISTEN_FDS": str(len(socks))}
        if names:
            env["LISTEN_FDNAMES"] = ":".join(names)
        cmd = ["bash", "-c", 'exec %s; exec "$@"' % redirs, "sh"] + CLI + \
            ["--bpffs", self.bpffs, "register", label, "--json"] + list(extra)
        e = dict(os.environ)
        e.update(env)
        proc = subprocess.run(cmd, pass_fds=[s.fileno() for s in socks], env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
        return Result(proc)

    def random_host(self, prefix):
        net = ipaddress.ip_network(prefix)
        if net.num_addresses <= 2:
            return str(net.network_address)
        off = self.rng.randrange(1, min(net.num_addresses - 1, 2 ** 32))
        return str(net.network_address + off)

    def random_port(self):
        # Below the ephemeral range: the client's source address is in the prefix too, and
        # source port == destination port would be a TCP self-connect, not a lookup.
        return self.rng.randrange(1024, 32768)

    def close(self):
        for s in self.sockets:
            s.close()


def which(candidates, timeout=2.0):
    """Index of the socket that got the connection/datagram (None if none)."""
    r, w, x = select.select(candidates, [], [], timeout)
    if not r:
        return None
    s = r[0]
    idx = candidates.index(s)
    if s.type == socket.SOCK_STREAM:
        conn, peer = s.accept()
        conn.close()
    else:
        s.recvfrom(2048)
    return idx


def connect(addr, port, timeout=2.0):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(timeout)
    try:
        c.connect((addr, port))
    except OSError:
        c.close()
        raise
    return c


def send_udp(addr, port, payload=b"x"):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as c:
        c.sendto(payload, (addr, port))


def probe(lab, proto, addr, port, candidates, timeout=2.0):
    """Send one connection/datagram to addr:port; return which candidate got it."""
    if proto == "tcp":
        c = connect(addr, port, timeout)
        try:
            return which(candidates, timeout)
        finally:
            c.close()
    send_udp(addr, port)
    return which(candidates, timeout)


@pytest.fixture
def lab(bpffs, request):
    original = ns.open_current()
    ns.unshare()
    lab = Lab(bpffs, request.node.name)
    try:
        lab.sh("ip link set lo up")
        yield lab
    finally:
        lab.close()
        try:
            lab.cli("unload")
        finally:
            ns.setns(original)
            os.close(original)
