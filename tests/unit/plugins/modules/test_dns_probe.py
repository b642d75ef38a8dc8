# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dns_probe against a real local DNS server (dnspython in a thread)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from ansible_collections.agility.addressing.plugins.modules import dns_probe
from ansible_collections.agility.addressing.tests.unit.plugins.modules.probe_servers import (
    DnsServer, dual_pool, pool_answer,
)
from ansible_collections.agility.addressing.tests.unit.plugins.modules.module_harness import run_module


def run(args, check=False):
    return run_module(dns_probe.main, args, check=check)


@pytest.fixture
def server(request):
    servers = []

    def start(behaviour, host="127.0.0.1"):
        s = DnsServer(behaviour, host)
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.close()


def rogue(prefix, outside, every):
    inner = pool_answer(prefix)
    n = [0]

    def behaviour(q, transport):
        n[0] += 1
        r = inner(q, transport)
        if n[0] % every == 0:
            r.answer = [dns.rrset.from_text(q.question[0].name, 30, "IN", "A", outside)]
        return r
    return behaviour


def rcode_only(rcode):
    def behaviour(q, transport):
        r = dns.message.make_response(q)
        r.set_rcode(rcode)
        return r
    return behaviour


def silent(q, transport):
    return None


def truncating(prefix):
    inner = pool_answer(prefix)

    def behaviour(q, transport):
        if transport == "udp":
            r = dns.message.make_response(q)
            r.flags |= dns.flags.TC
            return r
        return inner(q, transport)
    return behaviour


def garbage_then_answer(prefix):
    inner = pool_answer(prefix)

    def behaviour(q, transport):
        good = inner(q, transport).to_wire()
        wrong_id = bytearray(good)
        wrong_id[0] ^= 0xFF
        return [b"\x00\x01junk", bytes(wrong_id), good] if transport == "udp" else good
    return behaviour


# (case id, server behaviour, host, module args (server/port filled in), expect failed, checks)
CASES = [
    ("pool-v4-zone", pool_answer("198.18.0.0/20"), "127.0.0.1",
     dict(zone="pool.example.com", count=40, expect_prefix=["198.18.0.0/20"]), False,
     dict(queries=40, succeeded=40, ttl_min=30, ttl_max=30, rcodes={"NOERROR": 40})),
    ("pool-v4-names-repeat", pool_answer("198.18.0.0/24"), "127.0.0.1",
     dict(names=["a.example.com", "b.example.com."], repeat=5, expect_prefix="198.18.0.0/24"), False,
     dict(queries=10, succeeded=10)),
    ("pool-v6-over-tcp", pool_answer("2001:db8:100::/48", ttl=300), "::1",
     dict(zone="pool.example.com", count=10, qtype="AAAA", protocol="tcp",
          expect_prefix=["2001:db8:100::/48"]), False,
     dict(queries=10, succeeded=10, ttl_max=300)),
    ("cname-chain-compressed", pool_answer("198.18.0.0/24", cname=True), "127.0.0.1",
     dict(names=["www.example.com"], repeat=3, expect_prefix=["198.18.0.0/24"]), False,
     dict(succeeded=3)),
    ("wider-pool-than-expected", pool_answer("198.18.0.0/20"), "127.0.0.1",
     dict(zone="pool.example.com", count=40, expect_prefix=["198.18.0.0/24"]), True,
     dict(queries=40)),
    ("rogue-answer", rogue("198.18.0.0/24", "203.0.113.9", 4), "127.0.0.1",
     dict(zone="pool.example.com", count=8, expect_prefix=["198.18.0.0/24", "198.51.100.0/24"]), True,
     dict(outside=["203.0.113.9"], succeeded=8)),
    ("two-allowed-prefixes", rogue("198.18.0.0/24", "203.0.113.9", 4), "127.0.0.1",
     dict(zone="pool.example.com", count=8, expect_prefix=["198.18.0.0/24", "203.0.113.0/24"]), False,
     dict(outside=[])),
    ("nxdomain", rcode_only(dns.rcode.NXDOMAIN), "127.0.0.1",
     dict(names=["nope.example.com"], repeat=2), True,
     dict(succeeded=0, rcodes={"NXDOMAIN": 2})),
    ("refused-tolerated", rcode_only(dns.rcode.REFUSED), "127.0.0.1",
     dict(names=["nope.example.com"], min_answers=0), False,
     dict(succeeded=0, rcodes={"REFUSED": 1}, addresses=[])),
    ("timeout", silent, "127.0.0.1",
     dict(names=["x.example.com"], repeat=2, timeout=0.3), True,
     dict(rcodes={"TIMEOUT": 2})),
    ("truncated-udp-retried-over-tcp", truncating("198.18.0.0/24"), "127.0.0.1",
     dict(zone="pool.example.com", count=3, expect_prefix=["198.18.0.0/24"]), False,
     dict(succeeded=3)),
    ("garbage-and-wrong-id-skipped", garbage_then_answer("198.18.0.0/24"), "127.0.0.1",
     dict(zone="pool.example.com", count=3), False,
     dict(succeeded=3)),
    ("a-and-aaaa-in-one-run", dual_pool("198.18.0.0/24", "2001:db8:100::/64"), "127.0.0.1",
     dict(zone="pool.example.com", count=5, qtype=["A", "AAAA"],
          expect_prefix=["198.18.0.0/24", "2001:db8:100::/64"]), False,
     dict(queries=10, succeeded=10, rcodes={"NOERROR": 10})),
    ("a-and-aaaa-from-a-v4-only-pool", pool_answer("198.18.0.0/24"), "127.0.0.1",
     dict(zone="pool.example.com", count=5, qtype=["A", "AAAA"], expect_prefix=["198.18.0.0/24"]), True,
     dict(queries=10, succeeded=5)),
    ("aaaa-asked-a-only-answered", pool_answer("198.18.0.0/24"), "127.0.0.1",
     dict(names=["a.example.com"], qtype="AAAA", min_answers=1), True,
     dict(succeeded=0, rcodes={"NOERROR": 1})),
]


@pytest.mark.parametrize("behaviour,host,args,failed,checks",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_dns_probe(server, behaviour, host, args, failed, checks, check_mode):
    srv = server(behaviour, host)
    result = run(dict(args, server=host, port=srv.port), check=check_mode)
    assert result["changed"] is False
    assert bool(result.get("failed")) is failed, result.get("msg")
    for key, want in checks.items():
        assert result[key] == want, (key, result[key])
    assert result["distinct"] == len(result["addresses"])
    assert len(result["answers"]) == result["queries"]
    for a in result["answers"]:
        assert len(a["addresses"]) == len(a["ttls"])
    if "expect_prefix" in args and not failed:
        nets = [ipaddress.ip_network(p) for p in
                (args["expect_prefix"] if isinstance(args["expect_prefix"], list) else [args["expect_prefix"]])]
        assert all(any(ipaddress.ip_address(a) in n for n in nets) for a in result["addresses"])


def test_random_labels_are_distinct_and_under_the_zone(server):
    srv = server(pool_answer("198.18.0.0/20"))
    result = run(dict(server="127.0.0.1", port=srv.port, zone="pool.example.com.", count=25))
    names = [n for n, transport in srv.queries]
    assert len(set(names)) == 25
    assert all(n.endswith(".pool.example.com.") and n.count(".") == 4 for n in names)
    assert result["distinct"] > 1  # random pool answers: many distinct addresses


@pytest.mark.parametrize("args,needle", [
    (dict(), "one of the following is required"),
    (dict(names=["a"], zone="b"), "mutually exclusive"),
    (dict(names=["a"], port=0), "port must be"),
    (dict(names=["a"], expect_prefix=["not-a-prefix"]), "expect_prefix"),
    (dict(names=["a"], qtype="MX"), "value of qtype must be one or more of"),
    (dict(names=["."]), "non-empty name"),
    (dict(zone="x", count=0), "at least 1"),
])
def test_bad_arguments_fail_cleanly(args, needle):
    result = run(dict(args, server="127.0.0.1"))
    assert result["failed"] and needle in result["msg"]
