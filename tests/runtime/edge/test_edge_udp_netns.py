"""UDP replies come FROM the address (and port) the datagram was sent to.

In a network namespace with whole prefixes routed locally (`ip route add local
PREFIX dev lo`), a socket bound to the wildcard receives datagrams for every address
of the prefix. Clients bind a loopback source and use connected UDP sockets, so a
reply from any other source (what a naive server sends) is never received.
"""

import json
import socket
import threading

import pytest

from edge_helpers import free_port, needs_root, udp_ping
from edge_netns import NetNS

pytestmark = [needs_root, pytest.mark.root]

V4 = "198.51.100.0/24"
V6 = "2001:db8:e0::/64"


@pytest.fixture
def ns():
    n = NetNS()
    try:
        n.route_local(V4)
        n.route_local(V6)
        yield n
    finally:
        n.delete()


def ping_all(targets, port, source4="127.0.0.1", source6="::1"):
    out = []
    for addr in targets:
        try:
            doc, src = udp_ping(addr, port, token=addr, timeout=1.5,
                                source=source6 if ":" in addr else source4)
            out.append((addr, doc, src[:2]))
        except socket.timeout:
            out.append((addr, None, None))
    return out


TARGETS = ["198.51.100.7", "198.51.100.200", "198.51.100.0", "2001:db8:e0::7", "2001:db8:e0::ffff:1"]


@pytest.mark.parametrize("listens,targets", [
    # separate wildcard sockets per family
    (["udp:0.0.0.0:{p}", "udp:[::]:{p6}"], TARGETS),
    # one dual-stack socket for both families
    (["udp:[::]:{p}"], TARGETS),
    # specific addresses plus a wildcard on the same port
    (["udp:198.51.100.7:{p}", "udp:198.51.100.200:{p}", "udp:0.0.0.0:{p}"], TARGETS[:3]),
])
def test_udp_reply_source_is_the_destination(ns, edge_factory, listens, targets):
    p = free_port()
    p6 = free_port(host="::1")
    args = ["--pop", "nsu"]
    for spec in listens:
        args += ["--listen", spec.format(p=p, p6=p6)]
    edge = edge_factory(*args, netns=ns.name)
    v6port = p6 if "udp:[::]:{p6}" in listens else p
    for addr in targets:
        port = v6port if ":" in addr else p
        [(addr, doc, src)] = ns.run(ping_all, [addr], port)
        assert doc is not None, "no reply from %s:%d\n%s" % (addr, port, edge.text())
        assert src[0] == addr and src[1] == port
        fmt = "[%s]:%d" if ":" in addr else "%s:%d"
        assert doc["local"] == fmt % (addr, port)
        assert doc["token"] == addr
        assert doc["pop"] == "nsu"
    assert edge.count("WARNING", wait=0) == 0, edge.text()


def _naive_echo(sock, stop):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(2048)
        except socket.timeout:
            continue
        sock.sendto(json.dumps({"pop": "naive"}).encode(), peer)


def test_control_naive_server_fails_the_same_check(ns):
    """Without IP_PKTINFO the reply leaves from another address: the client never sees it."""
    p = free_port()
    stop = threading.Event()
    sock = ns.run(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind(("0.0.0.0", p))
    t = threading.Thread(target=_naive_echo, args=(sock, stop), daemon=True)
    t.start()
    try:
        results = ns.run(ping_all, ["127.0.0.1", "198.51.100.7"], p)
    finally:
        stop.set()
        t.join()
        sock.close()
    assert results[0][1] == {"pop": "naive"}  # bound-address traffic works
    assert results[1][1] is None              # pool address: reply from the wrong source
