"""agility-edge behind the real BPF sk_lookup dispatcher (agility-lookup).

The edge gets its sockets by socket activation (bound to loopback, port P); the
dispatcher steers whole prefixes on ANY port onto them. HTTP must report the address
and port the client dialled; UDP replies must come from that address AND port,
though the socket is bound elsewhere (the port differs: transient freebind socket).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from edge_helpers import Edge, free_port, needs_root, udp_ping
from edge_netns import NetNS
from test_edge_tls_activation import _spawn_activated

pytestmark = [needs_root, pytest.mark.root, pytest.mark.slow]

LOOKUP = [sys.executable, "-c", "import sys; from agility_runtime.sklookup.cli import main; sys.exit(main())"]
V4 = "198.51.100.0/24"
V6 = "2001:db8:e1::/64"


@pytest.fixture(scope="module")
def bpffs():
    if not (shutil.which("clang") or os.path.exists(
            os.path.join(os.path.dirname(__import__("agility_runtime").__file__),
                         "sklookup", "bpf", "dispatcher.bpf.o"))):
        pytest.skip("no compiled dispatcher and no clang")
    d = tempfile.mkdtemp(prefix="agility-edge-bpffs-")
    r = subprocess.run(["mount", "-t", "bpf", "bpf", d], capture_output=True, check=False)
    if r.returncode:
        os.rmdir(d)
        pytest.skip("cannot mount bpffs: %s" % r.stderr.decode().strip())
    yield d
    subprocess.run(["umount", d], check=False)
    os.rmdir(d)


def lookup(bpffs, ns, *args):
    r = subprocess.run(LOOKUP + ["--bpffs", bpffs, "--netns", ns.path] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, "agility-lookup %s: %s" % (" ".join(map(str, args)), r.stderr)
    return r.stdout


def _sockets(port):
    def make(fam, typ, addr):
        s = socket.socket(fam, typ)
        s.bind((addr, port))
        if typ == socket.SOCK_STREAM:
            s.listen(128)
        return s
    return [make(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
            make(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
            make(socket.AF_INET6, socket.SOCK_DGRAM, "::1")]


def _http(addr, port):
    from edge_helpers import http_get
    return http_get(addr, port, hostname="pool.example.com")


def test_prefix_any_port_reaches_edge_and_udp_replies_from_destination(bpffs, tmp_path):
    ns = NetNS(prefix="agedgesk")
    edge = None
    try:
        ns.route_local(V4)
        ns.route_local(V6)
        lookup(bpffs, ns, "load")
        for proto in ("tcp", "udp"):
            lookup(bpffs, ns, "bind", "edge", proto, V4, 0)
        lookup(bpffs, ns, "bind", "edge", "udp", V6, 0)
        port = free_port()
        socks = ns.run(_sockets, port)
        lookup(bpffs, ns, "register-pid", "edge", os.getpid(), *[s.fileno() for s in socks])
        wrapper, fds = _spawn_activated(socks, ["http", "udp", "udp6"])
        edge = Edge(["--pop", "sk1"], netns=ns.name, pass_fds=fds, wrapper=wrapper, expect_listeners=3)
        for s in socks:
            s.close()
        # TCP on addresses and ports nobody bound
        for addr, dport in [("198.51.100.7", 80), ("198.51.100.250", 443), ("198.51.100.7", port)]:
            status, doc = ns.run(_http, addr, dport)
            assert status == 200 and doc["pop"] == "sk1"
            assert doc["local"] == "%s:%d" % (addr, dport)
        # UDP: the reply must come from the dialled address and port
        for addr, dport in [("198.51.100.9", 53), ("198.51.100.9", port), ("198.51.100.77", 4433),
                            ("2001:db8:e1::9", 53), ("2001:db8:e1::abcd", 8443)]:
            src = "::1" if ":" in addr else "127.0.0.1"
            doc, reply_from = ns.run(udp_ping, addr, dport, "tok", 3, src)
            assert reply_from[:2] == (addr, dport)
            fmt = "[%s]:%d" if ":" in addr else "%s:%d"
            assert doc["local"] == fmt % (addr, dport)
        assert edge.count("WARNING", wait=0) == 0, edge.text()
    finally:
        if edge is not None:
            edge.stop()
        subprocess.run(LOOKUP + ["--bpffs", bpffs, "--netns", ns.path, "unload"], capture_output=True, check=False)
        ns.delete()
