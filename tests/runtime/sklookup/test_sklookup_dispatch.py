"""The real sk_lookup hook: which socket gets traffic to a bound prefix."""
import errno

import pytest

from .conftest import connect, probe, send_udp, which

pytestmark = pytest.mark.root

V4 = "198.18.0.0/20"
V6 = "2001:db8:42::/64"


def test_prefix_any_port_tcp_udp_ipv4_ipv6(lab):
    lab.route(V4)
    lab.route(V6)
    lab.load()
    res = lab.load_bindings([
        {"protocol": "tcp", "prefix": V4, "port": 0, "label": "web"},
        {"protocol": "udp", "prefix": V4, "port": 0, "label": "dns"},
        {"protocol": "tcp", "prefix": V6, "port": 0, "label": "web"},
        {"protocol": "udp", "prefix": V6, "port": 0, "label": "dns"},
    ])
    assert res["changed"] and len(res["steps"]) == 4
    t4, u4 = lab.listener("tcp", 4), lab.listener("udp", 4)
    t6, u6 = lab.listener("tcp", 6), lab.listener("udp", 6)
    lab.register("web", t4, t6)
    lab.register("dns", u4, u6)
    socks = [t4, u4, t6, u6]
    for dummy in range(25):
        assert probe(lab, "tcp", lab.random_host(V4), lab.random_port(), socks) == 0
        assert probe(lab, "udp", lab.random_host(V4), lab.random_port(), socks) == 1
        assert probe(lab, "tcp", lab.random_host(V6), lab.random_port(), socks) == 2
        assert probe(lab, "udp", lab.random_host(V6), lab.random_port(), socks) == 3
    status = lab.ok("status", "--json").json
    dests = {(d["label"], d["domain"], d["protocol"]): d for d in status["destinations"]}
    assert dests[("web", "ipv4", "tcp")]["lookups"] == 25
    assert all(d["socket"] for d in dests.values())


def test_systemd_socket_activation_register(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "web", "tcp", V4, 0)
    lab.ok("bind", "dns", "udp", V4, 53)
    t, u = lab.listener("tcp", 4), lab.listener("udp", 4)
    r = lab.register_systemd("ignored", [t, u], names=["web", "dns"], extra=["--use-fdnames"])
    assert r.rc == 0, r.err
    got = {(x["label"], x["protocol"]) for x in r.json["registered"]}
    assert got == {("web", "tcp"), ("dns", "udp")}
    assert probe(lab, "tcp", lab.random_host(V4), lab.random_port(), [t, u]) == 0
    assert probe(lab, "udp", lab.random_host(V4), 53, [t, u]) == 1


def test_precedence_longer_prefix_then_exact_port(lab):
    lab.route(V4)
    lab.route(V6)
    lab.load()
    lab.load_bindings([
        {"protocol": "tcp", "prefix": "198.18.0.0/20", "port": 0, "label": "wide"},
        {"protocol": "tcp", "prefix": "198.18.0.0/20", "port": 443, "label": "wide443"},
        {"protocol": "tcp", "prefix": "198.18.4.0/24", "port": 0, "label": "narrow"},
        {"protocol": "tcp", "prefix": "198.18.4.0/24", "port": 443, "label": "narrow443"},
        {"protocol": "tcp", "prefix": "198.18.4.9/32", "port": 0, "label": "host"},
        {"protocol": "tcp", "prefix": "2001:db8:42::/64", "port": 0, "label": "wide"},
        {"protocol": "tcp", "prefix": "2001:db8:42::/120", "port": 8443, "label": "narrow443"},
    ])
    names = ["wide", "wide443", "narrow", "narrow443", "host"]
    socks = {}
    for n in names:
        socks[n] = lab.listener("tcp", 4)
    socks6 = {"wide": lab.listener("tcp", 6), "narrow443": lab.listener("tcp", 6)}
    for n in names:
        lab.register(n, socks[n])
    for n, s in socks6.items():
        lab.register(n, s)
    order = [socks[n] for n in names]
    cases = [
        ("198.18.1.1", 80, "wide"),          # only the /20 matches
        ("198.18.1.1", 443, "wide443"),      # same prefix: exact port beats any port
        ("198.18.4.1", 80, "narrow"),        # longer prefix wins
        ("198.18.4.1", 443, "narrow443"),    # longest prefix, exact port
        ("198.18.4.9", 443, "host"),         # /32 any-port beats /24 port 443
        ("198.18.4.9", 22, "host"),
    ]
    for dummy in range(5):
        for addr, port, want in cases:
            assert names[probe(lab, "tcp", addr, port, order)] == want, (addr, port)
        a = lab.random_host("198.18.8.0/22")
        assert names[probe(lab, "tcp", a, lab.random_port(), order)] == "wide"
    o6 = [socks6["wide"], socks6["narrow443"]]
    assert probe(lab, "tcp", "2001:db8:42::7", 8443, o6) == 1
    assert probe(lab, "tcp", "2001:db8:42::7", 8444, o6) == 0
    assert probe(lab, "tcp", "2001:db8:42::1:7", 8443, o6) == 0


def test_missing_socket_drops_never_falls_through(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "absent", "tcp", "198.18.2.0/24", 0)
    lab.ok("bind", "absent", "udp", "198.18.2.0/24", 0)
    # A wildcard socket the normal lookup would pick if we fell through.
    fallback = lab.listener("tcp", 4, addr="0.0.0.0", port=8080)
    ufallback = lab.listener("udp", 4, addr="0.0.0.0", port=5353)
    with pytest.raises(OSError) as exc:
        connect("198.18.2.10", 8080)
    assert exc.value.errno == errno.ECONNREFUSED
    send_udp("198.18.2.10", 5353)
    assert which([fallback, ufallback], timeout=0.5) is None
    # Outside the bound /24 the normal lookup still works.
    assert probe(lab, "tcp", "198.18.3.10", 8080, [fallback]) == 0
    st = lab.ok("status", "--json").json
    d = {(x["protocol"]): x for x in st["destinations"]}
    assert d["tcp"]["missing_socket"] >= 1 and d["udp"]["missing_socket"] >= 1
    addrs = {a["address"]: a for a in lab.ok("addresses", "--json").json["addresses"]}
    assert addrs["198.18.2.10"]["drops"] >= 2 and addrs["198.18.2.10"]["hits"] == 0
    metrics = lab.ok("metrics").out
    assert 'agility_lookup_destination_drops_total{label="absent",domain="ipv4",protocol="tcp",reason="missing_socket"}' in metrics


def test_unbound_traffic_uses_normal_lookup(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "web", "tcp", "198.18.0.0/24", 80)
    web = lab.listener("tcp", 4)
    lab.register("web", web)
    plain = lab.listener("tcp", 4, addr="0.0.0.0", port=8081)
    assert probe(lab, "tcp", "198.18.0.5", 80, [web, plain]) == 0
    assert probe(lab, "tcp", "198.18.0.5", 8081, [web, plain]) == 1  # port not bound


def test_reuseport_group_shares_load(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "pool", "tcp", V4, 0)
    a = lab.listener("tcp", 4, reuseport=True)
    port = a.getsockname()[1]
    b = lab.listener("tcp", 4, port=port, reuseport=True)
    lab.register("pool", a)  # one member registered; the kernel picks within the group
    seen = [0, 0]
    for dummy in range(60):
        i = probe(lab, "tcp", lab.random_host(V4), lab.random_port(), [a, b])
        assert i is not None
        seen[i] += 1
    assert seen[0] > 0 and seen[1] > 0, seen


def test_addresses_counter_per_local_address(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "web", "tcp", V4, 0)
    s = lab.listener("tcp", 4)
    lab.register("web", s)
    hits = {"198.18.0.1": 3, "198.18.0.2": 5, "198.18.15.254": 1}
    for addr, n in hits.items():
        for dummy in range(n):
            assert probe(lab, "tcp", addr, lab.random_port(), [s]) == 0
    got = {a["address"]: a["hits"] for a in lab.ok("addresses", "--json").json["addresses"]}
    assert got == hits
    m = lab.ok("metrics").out
    assert 'agility_lookup_address_hits_total{address="198.18.0.2"} 5' in m
