"""The program's decisions equal the pure precedence model (issue 10 item 5).

The hash-per-prefix-length walk must choose exactly what the LPM trie chose:
the longest matching address prefix, on a tie the exact port over port 0.
Random binding sets (nested prefixes, both families, both protocols, exact and
any ports) are installed through the library, then changed binding by binding
(the incremental length bookkeeping), and for random addresses and ports the
program is run with BPF_PROG_TEST_RUN: its verdict and selected socket must be
the ones the model's binding implies. Every binding has its own label, so the
selected socket names the binding.
"""
import ipaddress
import random
import socket
import struct

import pytest

from agility_runtime.sklookup import libbpf, state
from agility_runtime.sklookup.build import object_path
from agility_runtime.sklookup.dispatcher import Dispatcher
from agility_runtime.sklookup.model import Binding

from .test_sklookup_model import Model

pytestmark = pytest.mark.root

SO_COOKIE = 57
SK_DROP, SK_PASS = 0, 1
SPACES = {4: ipaddress.ip_network("198.18.0.0/22"), 6: ipaddress.ip_network("2001:db8::/118")}
SHORTEST = {4: 16, 6: 96}   # prefixes from this length (covering the whole space) to host routes
PORTS = [0, 0, 80, 443]
QUERY_PORTS = [80, 443, 8080]


def random_prefix(rng, version):
    space = SPACES[version]
    top = space.max_prefixlen
    plen = rng.randrange(SHORTEST[version], top + 1)
    if version == 6 and rng.random() < 0.3:
        plen = rng.randrange(3, SHORTEST[6])  # /3../95 around the space: the other words of the length bitmaps
    host = int(space.network_address) + rng.randrange(space.num_addresses)
    net = ipaddress.ip_network((host >> (top - plen) << (top - plen), plen))
    return str(net)


def random_key(rng):
    return (rng.choice(["tcp", "udp"]), random_prefix(rng, rng.choice([4, 6])), rng.choice(PORTS))


def lookup_ctx(proto, addr, port):
    """struct bpf_sk_lookup (72 bytes) for BPF_PROG_TEST_RUN."""
    a = ipaddress.ip_address(addr)
    ctx = bytearray(72)
    fam = socket.AF_INET if a.version == 4 else socket.AF_INET6
    struct.pack_into("=II", ctx, 8, fam, socket.IPPROTO_TCP if proto == "tcp" else socket.IPPROTO_UDP)
    if a.version == 4:
        ctx[16:20] = socket.inet_aton("192.0.2.1")
        ctx[40:44] = a.packed
    else:
        ctx[20:36] = ipaddress.ip_address("2001:db8:ffff::1").packed
        ctx[44:60] = a.packed
    struct.pack_into("!H", ctx, 36, 40000)
    struct.pack_into("=I", ctx, 60, port)
    return bytes(ctx)


class Sockets(object):
    """One socket per binding label (its own destination), made on demand; some labels get none."""

    def __init__(self, d, rng):
        self.d, self.rng = d, rng
        self.by_dest = {}
        self.cookie_dest = {}

    def ensure(self, label, version, proto):
        dest = (label, version, proto)
        if dest in self.by_dest or self.rng.random() < 0.2:  # ~1 in 5: no socket, lookups drop
            return
        fam = socket.AF_INET if version == 4 else socket.AF_INET6
        s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        s.bind(("127.0.0.1" if version == 4 else "::1", 0))
        if proto == "tcp":
            s.listen(8)
        self.d.register(label, s.fileno(), fam, socket.IPPROTO_TCP if proto == "tcp" else socket.IPPROTO_UDP)
        self.by_dest[dest] = s
        self.cookie_dest[struct.unpack("=Q", s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0]] = dest

    def close(self):
        for s in self.by_dest.values():
            s.close()


def expected(model, socks, proto, addr, port):
    key = model.match(proto, addr, port)
    if key is None:
        return SK_PASS, None
    dest = (model.bindings[key], ipaddress.ip_network(key[1]).version, proto)
    return (SK_PASS, dest) if dest in socks.by_dest else (SK_DROP, None)


def check_queries(d, model, socks, rng, n):
    prog = d.pinned["prog"]
    for dummy in range(n):
        proto = rng.choice(["tcp", "udp"])
        space = SPACES[rng.choice([4, 6])]
        addr = str(space.network_address + rng.randrange(space.num_addresses))
        port = rng.choice(QUERY_PORTS)
        ret, _ns, out = libbpf.prog_test_run(prog, lookup_ctx(proto, addr, port), 1, ctx_out=True)
        cookie = struct.unpack_from("=Q", out, 0)[0]
        got = (ret, socks.cookie_dest.get(cookie) if cookie else None)
        assert got == expected(model, socks, proto, addr, port), (
            "%s %s port %d: program chose %s, model %s (binding %s)"
            % (proto, addr, port, got, expected(model, socks, proto, addr, port), model.match(proto, addr, port)))


@pytest.mark.parametrize("seed", range(6))
def test_program_follows_the_precedence_model(lab, seed):
    rng = random.Random(seed)
    state.load(object_path(), lab.bpffs)
    model = Model()
    with Dispatcher(lab.bpffs, write=True) as d:
        socks = Sockets(d, rng)
        try:
            label = iter("b%d" % i for i in range(10 ** 6))
            # A whole set through replace() (load-bindings) ...
            want = {}
            for dummy in range(rng.randrange(5, 60)):
                want[random_key(rng)] = next(label)
            d.replace([Binding(p, pre, port, l) for (p, pre, port), l in want.items()])
            for key, l in want.items():
                model.put(key, l)
                socks.ensure(l, ipaddress.ip_network(key[1]).version, key[0])
            check_queries(d, model, socks, rng, 300)
            # ... then one change at a time: new keys, relabels, removals.
            for dummy in range(40):
                if model.bindings and rng.random() < 0.4:
                    key = rng.choice(sorted(model.bindings))
                    d.unbind(*key)
                    model.delete(key)
                else:
                    key = rng.choice(sorted(model.bindings)) if model.bindings and rng.random() < 0.3 \
                        else random_key(rng)
                    l = next(label)
                    d.bind(Binding(key[0], key[1], key[2], l))
                    model.put(key, l)
                    socks.ensure(l, ipaddress.ip_network(key[1]).version, key[0])
                check_queries(d, model, socks, rng, 20)
        finally:
            socks.close()
