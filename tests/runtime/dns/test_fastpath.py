"""The hand-written fast path against dnspython's output (the slow path)."""

import dns.flags
import dns.message
import dns.name
import pytest
from hypothesis import given, settings, strategies as st

from agility_runtime import policy
from agility_runtime.dns import fastpath, handler, slowpath, state as statemod, stats as statsmod
from agility_runtime.dns.query import Query

from dns_helpers import policy_doc

import json


@pytest.fixture(scope="module")
def st_():
    return statemod.from_bytes(json.dumps(policy_doc()).encode())


@pytest.fixture(autouse=True)
def fixed_random(monkeypatch):
    """Same random bits for both paths."""
    monkeypatch.setattr(policy, "_randbits", lambda k: 0x5A5A5A5A5A5A5A5A5A5A & ((1 << k) - 1))


def both(state, wire, peer=("127.0.0.1", 5000), local=b"\x7f\x00\x00\x01"):
    fast = fastpath.answer(state, Query(wire, peer, local), statsmod.Stats(), 1232)
    slow = slowpath.respond(state, Query(wire, peer, local), statsmod.Stats(), 1232)
    return fast, slow


def mkq(name, rdtype="A", rd=True, cd=False, edns=None, do=False, payload=1232, qid=4242):
    q = dns.message.make_query(name, rdtype, use_edns=edns, want_dnssec=do, payload=payload)
    q.id = qid
    if not rd:
        q.flags &= ~dns.flags.RD
    if cd:
        q.flags |= dns.flags.CD
    return q.to_wire()


CASES = [
    ("www.example.com", "A", {}), ("www.example.com", "AAAA", {}), ("WwW.ExAmPlE.cOm", "A", {}),
    ("a.b.c.example.com", "A", {"edns": 0}), ("x.example.com", "AAAA", {"edns": 0, "do": True}),
    ("x.example.com", "A", {"rd": False}), ("x.example.com", "A", {"cd": True, "edns": 0, "payload": 4096}),
    ("www.pro.example", "A", {}), ("API.v1.pro.example", "A", {"edns": 0}),
    ("x.diverse.example", "A", {}), ("x.diverse.example", "AAAA", {"edns": 0}),
    ("example.com", "AAAA", {}),
]


@pytest.mark.parametrize("name,rdtype,kw", CASES)
def test_fast_path_matches_dnspython(st_, name, rdtype, kw):
    wire = mkq(name, rdtype, **kw)
    fast, slow = both(st_, wire)
    assert fast is not None, "the fast path should take this query"
    assert fast == slow
    # and twice (the second time from the plan cache)
    assert both(st_, wire)[0] == slow


@pytest.mark.parametrize("wire", [
    mkq("ns1.example.com", "A"),            # static A wins
    mkq("nope.pro.example", "A"),           # NXDOMAIN
    mkq("www.example.com", "TXT"),          # other qtype
    mkq("www.example.org", "A"),            # outside the zones: REFUSED
    mkq("x.sub.example.com", "A"),          # below a delegation
    mkq("www.pro.example", "AAAA"),         # pool without IPv6: NODATA
    mkq("www.example.com", "A", edns=1),    # BADVERS
    mkq("x.ecs.example", "A"),              # policy depends on the client: fast path, dynamic
])
def test_fast_path_declines_or_agrees(st_, wire):
    fast, slow = both(st_, wire)
    assert fast is None or fast == slow


def test_dynamic_policy_uses_local_address(st_):
    wire = mkq("x.local.example", "A")
    fast, slow = both(st_, wire, local=b"\x7f\x00\x00\x02")
    assert fast == slow
    assert dns.message.from_wire(fast).answer[0][0].address == "198.18.64.0"
    fast, slow = both(st_, wire, local=b"\x7f\x00\x00\x01")
    assert fast == slow
    assert dns.message.from_wire(fast).answer[0][0].address != "198.18.64.0"


def test_partition_strategy_by_name(monkeypatch):
    doc = policy_doc()
    doc["pools"]["part"] = {"ipv4": {"announced": "198.18.80.0/24", "used": "198.18.80.0/29"}}
    doc["policies"].insert(0, {"name": "part", "match": {"zones": ["pro.example"]}, "pool": "part", "ttl": 5,
                               "strategy": "partition", "slices": [["www.pro.example"], ["api.v1.pro.example"]]})
    state = statemod.from_bytes(json.dumps(doc).encode())
    got = {}
    for name in ("www.pro.example", "API.v1.pro.example"):
        fast, slow = both(state, mkq(name))
        assert fast == slow
        got[name] = dns.message.from_wire(fast).answer[0][0].address
    assert got == {"www.pro.example": "198.18.80.0", "API.v1.pro.example": "198.18.80.1"}


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1,
                 max_size=20)


@settings(max_examples=300, deadline=None)
@given(labels=st.lists(_label, min_size=0, max_size=5), rdtype=st.sampled_from(["A", "AAAA"]),
       zone=st.sampled_from(["example.com", "pro.example", "diverse.example", "EXAMPLE.com"]),
       edns=st.sampled_from([None, 0]), do=st.booleans(), rd=st.booleans(), qid=st.integers(0, 65535))
def test_property_fast_equals_slow(labels, rdtype, zone, edns, do, rd, qid):
    state = _STATE
    name = ".".join(labels + [zone])
    wire = mkq(name, rdtype, rd=rd, edns=edns, do=do and edns is not None, qid=qid)
    fast = fastpath.answer(state, Query(wire, ("127.0.0.1", 1), b"\x7f\x00\x00\x01"), statsmod.Stats(), 1232)
    slow = handler.slow(state, Query(wire, ("127.0.0.1", 1), b"\x7f\x00\x00\x01"), statsmod.Stats(), 1232)
    if fast is not None:
        assert fast == slow
    r = dns.message.from_wire(slow)
    assert r.id == qid and r.question[0].name.to_text() == name + "."


_STATE = statemod.from_bytes(json.dumps(policy_doc()).encode())


def test_static_wildcard_address_beats_policy_on_both_paths():
    """RFC 4592: in a zone where the policy answers every name, a static ``*.wa A`` (or CNAME)
    synthesises the answer below ``wa``; the fast path must leave those names to the slow path."""
    doc = policy_doc()
    doc["zones"]["example.com"]["records"] += [{"name": "*.wa", "type": "A", "data": "192.0.2.77"},
                                               {"name": "*.wc", "type": "CNAME", "data": "ns1"}]
    state = statemod.from_bytes(json.dumps(doc).encode())
    for name, want in (("b.wa.example.com", "192.0.2.77"), ("x.y.wa.example.com", "192.0.2.77"),
                       ("b.wc.example.com", "192.0.2.53")):
        resp = dns.message.from_wire(handler.handle(state, mkq(name), ("127.0.0.1", 5000), b"\x7f\x00\x00\x01",
                                                    statsmod.Stats(), 1232))
        assert resp.answer[-1][0].address == want, name
        assert resp.answer[0].name == dns.name.from_text(name)
    fast, slow = both(state, mkq("wa.example.com"))  # the wildcard's parent itself: policy, fast
    assert fast is not None and fast == slow
