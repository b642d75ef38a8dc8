"""Model check of agility-lookup (issue 10): the maps always equal a pure model.

A hypothesis state machine drives the real CLI (main(argv), in this process
and this test's network namespace) with random bind, unbind, load-bindings
(grow, shrink, relabel, nest), register, unregister, service restart and
program upgrade. After every step the dumped maps must equal the model:
bindings and their labels, destinations and reference counts, socket
presence, one counter slot per binding with the lookups the model expects.
Probe connections and datagrams must land where the model says.

CI runs a bounded number of examples; AGILITY_SKLOOKUP_SOAK=N runs N examples
of up to 60 steps (e.g. AGILITY_SKLOOKUP_SOAK=2000 for a soak).
"""
import errno
import ipaddress
import json
import os
import select
import socket
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from agility_runtime.sklookup import libbpf, maps
from agility_runtime.sklookup.dispatcher import Dispatcher

from . import inproc

pytestmark = pytest.mark.root

SOAK = int(os.environ.get("AGILITY_SKLOOKUP_SOAK", "0"))
ROUTES = ["198.18.0.0/20", "2001:db8::/64", "198.51.100.0/24", "2001:db8:1::/64"]
# Probe clients send from here, outside every binding: the kernel's ICMP port-unreachable for a
# dropped datagram makes a socket lookup for the *client's* address, which a binding would count.
CLIENT = {socket.AF_INET: "198.51.100.1", socket.AF_INET6: "2001:db8:1::1"}
# Nested on purpose: wider and narrower prefixes over the same addresses.
PREFIXES = ["198.18.0.0/20", "198.18.0.0/24", "198.18.0.0/28", "198.18.0.5/32", "198.18.1.0/24",
            "2001:db8::/64", "2001:db8::/112", "2001:db8::5/128"]
PROBE_ADDRS = ["198.18.0.5", "198.18.0.9", "198.18.0.77", "198.18.1.7", "198.18.2.1",
               "2001:db8::5", "2001:db8::9", "2001:db8::1:0:1"]
PORTS = [0, 80, 443]
PROBE_PORTS = [80, 443, 8080]
LABELS = ["A", "B", "C"]
PROTOS = ["tcp", "udp"]
DOMAINS = ["ipv4", "ipv6"]

keys = st.tuples(st.sampled_from(PROTOS), st.sampled_from(PREFIXES), st.sampled_from(PORTS))
labels = st.sampled_from(LABELS)


def domain_of(prefix):
    return "ipv4" if ipaddress.ip_network(prefix).version == 4 else "ipv6"


class Model(object):
    """What the operator declared, and what the dispatcher must therefore do."""

    def __init__(self):
        self.bindings = {}   # (proto, prefix, port) -> label
        self.lookups = {}    # (proto, prefix, port) -> lookups counted in its slot
        self.sockets = set()  # (label, domain, proto) with a registered socket

    def put(self, key, label):
        if key not in self.bindings:
            self.lookups[key] = 0  # a new binding gets a fresh slot; a relabel keeps its slot
        self.bindings[key] = label

    def delete(self, key):
        self.bindings.pop(key, None)
        self.lookups.pop(key, None)

    def dests(self):
        """(label, domain, proto) -> reference count, for every destination that must exist."""
        out = {(l, d, p): 0 for (l, d, p) in self.sockets}
        for (proto, prefix, _port), label in self.bindings.items():
            k = (label, domain_of(prefix), proto)
            out[k] = out.get(k, 0) + 1
        return out

    def prefix_lens(self):
        """{protocol: {(kind, bits): bindings}}: kind 0 = exact port, 1 = any port; bits in the v6 space."""
        out = {}
        for (proto, prefix, port) in self.bindings:
            net = ipaddress.ip_network(prefix)
            k = (1 if port == 0 else 0, net.prefixlen + (96 if net.version == 4 else 0))
            out.setdefault(proto, {})[k] = out.get(proto, {}).get(k, 0) + 1
        return out

    def match(self, proto, addr, port):
        """The binding a lookup selects: longest prefix, then exact port over any port."""
        a = ipaddress.ip_address(addr)
        best = None
        for key in self.bindings:
            kproto, prefix, kport = key
            net = ipaddress.ip_network(prefix)
            if kproto != proto or net.version != a.version or a not in net or kport not in (0, port):
                continue
            rank = (net.prefixlen, 1 if kport else 0)
            if best is None or rank > best[0]:
                best = (rank, key)
        return None if best is None else best[1]


def wait_readable(socks, timeout):
    r, _w, _x = select.select(socks, [], [], timeout)
    return r


def drain(s):
    if s.type == socket.SOCK_STREAM:
        c, _peer = s.accept()
        c.close()
    else:
        s.recvfrom(2048)


class Lookup(RuleBasedStateMachine):
    lab = None  # set by the test

    def __init__(self):
        super().__init__()
        self.bpffs = self.lab.bpffs
        inproc.run(self.bpffs, "unload")
        inproc.ok(self.bpffs, "load")
        self.model = Model()
        self.socks = {}  # (label, domain, proto) -> listening socket

    def teardown(self):
        for s in self.socks.values():
            s.close()
        inproc.run(self.bpffs, "unload")

    def cli(self, *args):
        return inproc.ok(self.bpffs, *args)

    # ---- binding changes ------------------------------------------------
    @rule(key=keys, label=labels)
    def bind(self, key, label):
        proto, prefix, port = key
        self.cli("bind", label, proto, prefix, port)
        self.model.put(key, label)

    @rule(key=keys)
    def unbind(self, key):
        proto, prefix, port = key
        self.cli("unbind", proto, prefix, port)
        self.model.delete(key)

    @rule(data=st.data())
    def nest(self, data):
        """The issue's sequence: a narrower binding of another label under an existing one."""
        wider = sorted(self.model.bindings)
        if not wider:
            return
        proto, prefix, port = data.draw(st.sampled_from(wider))
        net = ipaddress.ip_network(prefix)
        inner = [p for p in PREFIXES if ipaddress.ip_network(p).version == net.version
                 and ipaddress.ip_network(p) != net and ipaddress.ip_network(p).subnet_of(net)]
        if not inner:
            return
        key = (proto, data.draw(st.sampled_from(inner)), port)
        label = data.draw(st.sampled_from([l for l in LABELS if l != self.model.bindings[(proto, prefix, port)]]))
        self.bind(key, label)

    @rule(data=st.data())
    def load_bindings(self, data):
        """Replace the whole set: random growth, shrinkage, relabels and nesting."""
        current = dict(self.model.bindings)
        keep = data.draw(st.sets(st.sampled_from(sorted(current)) if current else st.nothing()))
        relabel = data.draw(st.dictionaries(st.sampled_from(sorted(keep)) if keep else st.nothing(), labels))
        add = data.draw(st.dictionaries(keys, labels, max_size=4))
        want = {k: current[k] for k in keep}
        want.update(relabel)
        want.update(add)
        items = [{"protocol": p, "prefix": pre, "port": port, "label": l} for (p, pre, port), l in want.items()]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"bindings": items}, f)
        try:
            self.cli("load-bindings", f.name)
        finally:
            os.unlink(f.name)
        for k in list(self.model.bindings):
            if k not in want:
                self.model.delete(k)
        for k, l in want.items():
            self.model.put(k, l)

    # ---- sockets ----------------------------------------------------------
    def _listen(self, dest):
        _label, domain, proto = dest
        fam = socket.AF_INET if domain == "ipv4" else socket.AF_INET6
        s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        s.bind(("127.0.0.1" if domain == "ipv4" else "::1", 0))
        if proto == "tcp":
            s.listen(64)
        return s

    @rule(label=labels, domain=st.sampled_from(DOMAINS), proto=st.sampled_from(PROTOS))
    def register(self, label, domain, proto):
        dest = (label, domain, proto)
        new = self._listen(dest)
        self.cli("register-pid", label, os.getpid(), new.fileno())
        old = self.socks.pop(dest, None)
        if old is not None:
            old.close()
        self.socks[dest] = new
        self.model.sockets.add(dest)

    @rule(label=labels)
    def unregister(self, label):
        self.cli("unregister", label)
        for dest in [d for d in self.socks if d[0] == label]:
            self.socks.pop(dest).close()
            self.model.sockets.discard(dest)

    @precondition(lambda self: self.socks)
    @rule(data=st.data())
    def restart_service(self, data):
        """A service restart: its sockets go away, new ones are registered."""
        label = data.draw(st.sampled_from(sorted({d[0] for d in self.socks})))
        dests = [d for d in self.socks if d[0] == label]
        self.unregister(label)
        for dest in dests:
            self.register(*dest)

    @rule()
    def upgrade(self):
        self.cli("upgrade")

    # ---- traffic ----------------------------------------------------------
    @rule(proto=st.sampled_from(PROTOS), addr=st.sampled_from(PROBE_ADDRS), port=st.sampled_from(PROBE_PORTS))
    def probe(self, proto, addr, port):
        key = self.model.match(proto, addr, port)
        fallback = self.lab.fallback[(proto, "ipv6" if ":" in addr else "ipv4", port)]
        expected = None
        if key is None:
            expected = fallback
        else:
            self.model.lookups[key] += 1
            dest = (self.model.bindings[key], domain_of(key[1]), proto)
            expected = self.socks.get(dest)  # None: dropped
        candidates = list(self.socks.values()) + [fallback]
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        if proto == "tcp":
            c = socket.socket(fam, socket.SOCK_STREAM)
            c.bind((CLIENT[fam], 0))
            c.settimeout(2)
            try:
                c.connect((addr, port))
                refused = False
            except ConnectionRefusedError:
                refused = True
            finally:
                c.close()
            if expected is None:
                assert refused, "%s %s:%d: connected, model says dropped (%s)" % (proto, addr, port, key)
                return
            assert not refused, "%s %s:%d refused, model says %s" % (proto, addr, port, key)
            got = wait_readable(candidates, 2)
        else:
            with socket.socket(fam, socket.SOCK_DGRAM) as c:
                c.bind((CLIENT[fam], 0))
                c.sendto(b"x", (addr, port))
            got = wait_readable(candidates, 2 if expected is not None else 0.05)
            if expected is None:
                assert got == [], "%s %s:%d: delivered, model says dropped (%s)" % (proto, addr, port, key)
                return
        assert got == [expected], "%s %s:%d went to %r, model says %s" % (
            proto, addr, port, [self._name(s) for s in got], key)
        drain(expected)

    def _name(self, s):
        for d, x in self.socks.items():
            if x is s:
                return d
        return "fallback"

    # ---- the check ----------------------------------------------------------
    @staticmethod
    def _marked_ids(d):
        """Binding ids marked in use in the writers' bitmap, or None before a writer made it."""
        try:
            fd = libbpf.obj_get(d.paths.pin(maps.BIND_IDS_MAP), readonly=True)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        try:
            bits = libbpf.map_lookup(fd, maps.U32.pack(0), maps.BIND_IDS_SIZE)
        finally:
            os.close(fd)
        return maps.unpack_id_bitmap(bits)

    @invariant()
    def maps_equal_model(self):
        with Dispatcher(self.bpffs) as d:  # not read-only: maps the filter (fast)
            bindings = d.bindings(counters=True)
            dests = d.destinations()
            lens = d.prefix_lens()  # also checks each length's bit against its count
            filter_counts = d.filter_counts()
        got = {(b.protocol, str(b.prefix), b.port): b.label for b, _c in bindings}
        assert got == self.model.bindings
        ids = [c["id"] for _b, c in bindings]
        assert len(set(ids)) == len(ids), "two bindings share a counter slot: %s" % bindings
        marked = self._marked_ids(d)
        assert marked is None or marked == set(ids), "the binding-id bitmap differs from the bindings"
        assert lens == self.model.prefix_lens(), "the prefix lengths the program walks differ from the bindings"
        assert filter_counts == maps.filter_counts(
            (maps.PROTOCOLS[p], port, ipaddress.ip_network(pre)) for p, pre, port in self.model.bindings), \
            "the prefix filter's counters differ from the bindings"
        counts = {(b.protocol, str(b.prefix), b.port): c["lookups"] for b, c in bindings}
        assert counts == self.model.lookups
        got_dests = {(x["label"], x["domain"], x["protocol"]): x["bindings"] for x in dests}
        assert got_dests == self.model.dests()
        dest_ids = [x["id"] for x in dests]
        assert len(set(dest_ids)) == len(dest_ids)
        sockets = {(x["label"], x["domain"], x["protocol"]) for x in dests if x["socket"]}
        assert sockets == self.model.sockets


def _fallbacks():
    """Sockets the normal lookup finds when no binding matches."""
    out = {}
    for proto in PROTOS:
        for domain in DOMAINS:
            for port in PROBE_PORTS:
                fam = socket.AF_INET if domain == "ipv4" else socket.AF_INET6
                s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0" if domain == "ipv4" else "::", port))
                if proto == "tcp":
                    s.listen(64)
                out[(proto, domain, port)] = s
    return out


def test_maps_follow_the_model(lab):
    for r in ROUTES:
        lab.route(r)
    lab.sh("ip -6 addr add %s/128 dev lo nodad" % CLIENT[socket.AF_INET6])  # IPv6 binds need the address itself
    lab.fallback = _fallbacks()
    lab.sockets += list(lab.fallback.values())
    Lookup.lab = lab
    examples, steps = (SOAK, 60) if SOAK else (25, 25)
    run_state_machine_as_test(Lookup, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=list(HealthCheck)))


WRITER = """
import sys
from agility_runtime.sklookup import cli
bpffs, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    if cli.main(["--bpffs", bpffs, "bind", "W", "tcp", "198.18.%d.0/24" % (4 + i), "80"]) != 0:
        sys.exit(1)
    if i % 3 == 2 and cli.main(["--bpffs", bpffs, "unbind", "tcp", "198.18.%d.0/24" % (4 + i - 1), "80"]) != 0:
        sys.exit(1)
"""


def test_concurrent_second_writer(lab):
    """A second process changes bindings while this one does: the flock serialises them, nothing is lost."""
    lab.route("198.18.0.0/16")
    inproc.ok(lab.bpffs, "load")
    n = 30
    proc = subprocess.Popen([sys.executable, "-c", WRITER, lab.bpffs, str(n)], stderr=subprocess.PIPE,
                            universal_newlines=True)
    model = Model()
    for i in range(n):
        key = ("udp", "198.18.%d.0/24" % (4 + i), 0)
        inproc.ok(lab.bpffs, "bind", "M", *key)
        model.put(key, "M")
        if i % 4 == 3:
            inproc.ok(lab.bpffs, "bind", "N", "udp", "198.18.%d.5/32" % (4 + i), 0)  # nested, another label
            model.put(("udp", "198.18.%d.5/32" % (4 + i), 0), "N")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    for i in range(n):
        model.put(("tcp", "198.18.%d.0/24" % (4 + i), 80), "W")
        if i % 3 == 2:
            model.delete(("tcp", "198.18.%d.0/24" % (4 + i - 1), 80))
    with Dispatcher(lab.bpffs, readonly=True) as d:
        got = {(b.protocol, str(b.prefix), b.port): b.label for b, _c in d.bindings(counters=True)}
        dests = {(x["label"], x["domain"], x["protocol"]): x["bindings"] for x in d.destinations()}
    assert got == model.bindings
    assert dests == model.dests()
    fallback = lab.listener("tcp", 4, addr="0.0.0.0", port=80)
    with pytest.raises(OSError) as exc:  # bound to W, no socket: dropped, not the normal lookup
        socket.create_connection(("198.18.6.1", 80), timeout=2)
    assert exc.value.errno == errno.ECONNREFUSED
    socket.create_connection(("198.18.5.1", 80), timeout=2).close()  # unbound again: normal lookup
    assert wait_readable([fallback], 2) == [fallback]
