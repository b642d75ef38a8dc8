"""Authoritative semantics side by side with Knot DNS 3.2 on the same zone (issue 13).

The policy zone ``cmp.example`` and the Knot zone file below hold the same data; ``web`` is a
policy name in ours (``single`` strategy on a /32, so its address is fixed) and a static A in
Knot's. Each question is asked of both servers and the answers compared: rcode, AA, and the
answer, authority and additional sections as sets of RRsets (order inside a section is free).
"""

import random

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import pytest

from dns_helpers import Knot, Server, policy_doc, query

DS_DATA = "12345 13 2 " + "00" * 32
CMP_RECORDS = [
    {"name": "ns1", "type": "A", "data": "192.0.2.53"},
    {"name": "@", "type": "MX", "data": "10 mail"},
    {"name": "mail", "type": "A", "data": "192.0.2.25"},
    {"name": "mail", "type": "AAAA", "data": "2001:db8::25"},
    {"name": "_sip._udp", "type": "SRV", "data": "0 5 5060 sipserver"},
    {"name": "sipserver", "type": "A", "data": "192.0.2.60"},
    {"name": "www", "type": "CNAME", "data": "web"},
    {"name": "alias2", "type": "CNAME", "data": "www"},
    {"name": "out", "type": "CNAME", "data": "www.example.org."},
    {"name": "gone", "type": "CNAME", "data": "nothere"},
    {"name": "tosub", "type": "CNAME", "data": "x.sub"},
    {"name": "towild", "type": "CNAME", "data": "b.wild"},
    {"name": "*.wild", "type": "TXT", "data": "\"wild\""},
    {"name": "*.wild", "type": "MX", "data": "10 mail"},
    {"name": "exists.wild", "type": "TXT", "data": "\"real\""},
    {"name": "deep.ent.wild", "type": "TXT", "data": "\"below an empty non-terminal\""},
    {"name": "*.wa", "type": "A", "data": "192.0.2.77"},
    {"name": "*.wc", "type": "CNAME", "data": "web"},
    {"name": "*.lw", "type": "CNAME", "data": "x.lw"},  # every name below lw is a CNAME to x.lw: a loop
    {"name": "sub", "type": "NS", "data": "ns.sub"},
    {"name": "sub", "type": "DS", "data": DS_DATA},
    {"name": "ns.sub", "type": "A", "data": "192.0.2.99"},
    {"name": "nods", "type": "NS", "data": "ns.nods"},
    {"name": "ns.nods", "type": "A", "data": "192.0.2.98"},
]
KNOT_ZONE = """$ORIGIN cmp.example.
$TTL 300
@ 300 SOA ns1 hostmaster 7 7200 3600 1209600 120
@ 300 NS ns1
web A 198.18.64.1
""" + "".join("%s %s %s\n" % (r["name"], r["type"], r["data"]) for r in CMP_RECORDS)

QUESTIONS = [
    # RFC 4592 wildcards: synthesis with owner = qname, NODATA for other types, closest encloser
    ("a.wild.cmp.example", "TXT"), ("x.a.wild.cmp.example", "TXT"), ("a.wild.cmp.example", "A"),
    ("a.wild.cmp.example", "MX"), ("exists.wild.cmp.example", "TXT"), ("exists.wild.cmp.example", "A"),
    ("x.exists.wild.cmp.example", "TXT"), ("ent.wild.cmp.example", "TXT"), ("x.ent.wild.cmp.example", "TXT"),
    ("*.wild.cmp.example", "TXT"), ("b.wa.cmp.example", "A"), ("b.wa.cmp.example", "AAAA"),
    ("nowild.cmp.example", "TXT"), ("b.wc.cmp.example", "A"), ("b.lw.cmp.example", "A"),
    ("towild.cmp.example", "TXT"),
    # in-zone CNAME chasing, loops, out-of-zone and missing targets, targets below a cut
    ("www.cmp.example", "A"), ("alias2.cmp.example", "A"), ("www.cmp.example", "CNAME"),
    ("out.cmp.example", "A"), ("gone.cmp.example", "A"), ("tosub.cmp.example", "A"),
    # additional-section addresses for NS, MX and SRV targets
    ("cmp.example", "NS"), ("cmp.example", "MX"), ("_sip._udp.cmp.example", "SRV"),
    # DS at a delegation point: parent-side authoritative answer; below it: referral
    ("sub.cmp.example", "DS"), ("nods.cmp.example", "DS"), ("x.sub.cmp.example", "DS"),
    ("sub.cmp.example", "A"),
]


def cmp_doc():
    doc = policy_doc()
    doc["zones"] = {"cmp.example": {
        "account_type": "cmp",
        "soa": {"mname": "ns1.cmp.example", "rname": "hostmaster.cmp.example", "serial": 7, "minimum": 120,
                "ttl": 300},
        "ns": ["ns1.cmp.example"], "hostnames": ["web"], "records": CMP_RECORDS}}
    doc["policies"].insert(0, {"name": "cmp", "match": {"zones": ["cmp.example"]}, "pool": "loc", "ttl": 300,
                               "strategy": "single"})
    doc["pools"]["loc"]["ipv4"]["used"] = "198.18.64.1/32"
    return doc


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ours = Server(tmp_path_factory.mktemp("agility"), doc=cmp_doc(), args=("--nsid", "pop-cmp"))
    knot = Knot(tmp_path_factory.mktemp("knot"), {"cmp.example": KNOT_ZONE},
                server_conf="    identity: pop-cmp\n    version: \"\"\n")
    yield ours.port, knot.port
    ours.stop()
    knot.stop()


def shape(resp):
    def section(rrsets):
        return sorted(rrset.to_text().lower() for rrset in rrsets)
    return (dns.rcode.to_text(resp.rcode()), bool(resp.flags & dns.flags.AA),
            section(resp.answer), section(resp.authority), section(resp.additional))


@pytest.mark.parametrize("name,rdtype", QUESTIONS)
def test_same_answer_as_knot(pair, name, rdtype):
    ours, knot = pair
    assert shape(query(name, rdtype, ours)) == shape(query(name, rdtype, knot))


def test_wildcard_synthesis_details(pair):
    ours, _knot = pair
    r = query("A.Wild.cmp.example", "TXT", ours)
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0].name.to_text().lower() == "a.wild.cmp.example."
    assert r.answer[0][0].strings == (b"wild",)
    r = query("x.exists.wild.cmp.example", "TXT", ours)  # an existing name blocks the wildcard
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer


def test_cname_chase_ends_in_policy_answer(pair):
    ours, _knot = pair
    r = query("alias2.cmp.example", "A", ours)
    assert [rr.rdtype for rr in r.answer] == [5, 5, 1]
    assert r.answer[-1][0].address == "198.18.64.1" and r.flags & dns.flags.AA


@pytest.mark.parametrize("name", ["id.server", "hostname.bind", "version.bind", "version.server", "authors.bind"])
def test_chaos_identity_as_knot(pair, name):
    ours, knot = pair
    got = {}
    for who, port in (("ours", ours), ("knot", knot)):
        r = query(name, "TXT", port, rdclass=dns.rdataclass.CH)
        got[who] = shape(r)
    assert got["ours"] == got["knot"]
    if name in ("id.server", "hostname.bind"):
        assert got["ours"][2] == ['%s. 0 ch txt "pop-cmp"' % name]
    else:
        assert got["ours"][0] == "REFUSED"


def test_chaos_version_when_configured(make_server):
    srv = make_server(args=("--server-version", "agility-dns"))
    r = query("version.bind", "TXT", srv.port, rdclass=dns.rdataclass.CH)
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].strings == (b"agility-dns",)
    r = query("id.server", "TXT", srv.port, rdclass=dns.rdataclass.CH)  # no --nsid: no identity
    assert r.rcode() == dns.rcode.REFUSED


def test_formerr_keeps_opt_as_knot(tmp_path):
    """A malformed COOKIE option: FORMERR with the question and an OPT record in both."""
    knot = Knot(tmp_path, {"cmp.example": KNOT_ZONE}, sections="mod-cookies:\n  - id: default\n",
                template_conf="    global-module: mod-cookies/default\n")
    ours = Server(tmp_path, doc=cmp_doc())
    try:
        got = {}
        for who, port in (("ours", ours.port), ("knot", knot.port)):
            q = dns.message.make_query("a.cmp.example", "A", use_edns=0,
                                       options=[dns.edns.GenericOption(10, b"\x11" * 12)])
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
            got[who] = (dns.rcode.to_text(r.rcode()), r.edns, len(r.question), r.options)
        assert got["ours"] == got["knot"] == ("FORMERR", 0, 1, ())
    finally:
        ours.stop()
        knot.stop()


def random_tree(seed):
    """A zone of TXT and A records at random owners (labels a, b, c and the wildcard)."""
    rng = random.Random(seed)
    owners = set()
    while len(owners) < 14:
        owners.add(".".join(rng.choice("abc*") for _label in range(rng.randint(1, 3))))
    return [{"name": o, "type": "A", "ttl": 300, "data": "192.0.2.%d" % rng.randint(1, 254)} if rng.random() < 0.5
            else {"name": o, "type": "TXT", "ttl": 300, "data": "\"%s\"" % o} for o in sorted(owners)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_wildcard_trees_as_knot(tmp_path, seed):
    """Closest encloser, empty non-terminals and wildcard synthesis on random trees: every name
    of up to three labels from a, b, c, x asked for TXT and A of both servers."""
    import itertools
    records = random_tree(seed)
    doc = policy_doc()
    doc["zones"] = {"rnd.example": {
        "account_type": "cmp", "soa": {"mname": "ns1.rnd.example", "rname": "h.rnd.example", "serial": 1,
                                       "minimum": 60, "ttl": 60},
        "ns": ["ns1.rnd.example"], "hostnames": [], "records": records}}
    zone = "$ORIGIN rnd.example.\n$TTL 300\n@ 60 SOA ns1 h 1 7200 3600 1209600 60\n@ 60 NS ns1\n" + "".join(
        "%s %s %s\n" % (r["name"], r["type"], r["data"]) for r in records)
    ours = Server(tmp_path, doc=doc)
    knot = Knot(tmp_path, {"rnd.example": zone})
    try:
        for n in range(1, 4):
            for labels in itertools.product("abcx", repeat=n):
                name = ".".join(labels) + ".rnd.example"
                for rdtype in ("TXT", "A"):
                    assert shape(query(name, rdtype, ours.port)) == shape(query(name, rdtype, knot.port)), \
                        (name, rdtype, records)
    finally:
        ours.stop()
        knot.stop()


def handle(state, wire):
    from agility_runtime.dns import handler, stats as statsmod
    return handler.handle(state, wire, ("127.0.0.1", 5000), b"\x7f\x00\x00\x01", statsmod.Stats(), 1232)


def test_wildcard_hostname_lets_the_policy_answer_below_it():
    """``hostnames: ["*.h"]``: the policy answers every name the wildcard synthesises (RFC 4592
    rules: ``h`` itself is an empty non-terminal, a name below an existing one is not covered)."""
    import json

    from agility_runtime.dns import state as statemod
    doc = cmp_doc()
    zone = doc["zones"]["cmp.example"]
    zone["hostnames"] = ["*.h"]
    zone["records"] = [{"name": "txt.h", "type": "TXT", "data": "x"}]
    state = statemod.from_bytes(json.dumps(doc).encode())
    for name, rcode, answered in (("a.h", "NOERROR", True), ("x.y.h", "NOERROR", True), ("h", "NOERROR", False),
                                  ("txt.h", "NOERROR", False), ("a.txt.h", "NXDOMAIN", False),
                                  ("other", "NXDOMAIN", False)):
        r = dns.message.from_wire(handle(state, dns.message.make_query(name + ".cmp.example", "A").to_wire()))
        assert (dns.rcode.to_text(r.rcode()), bool(r.answer)) == (rcode, answered), name
        if answered:
            assert r.answer[0][0].address == "198.18.64.1"


def test_formerr_opt_only_when_one_reads():
    """Two OPT records: FORMERR without OPT (which one would count?); two questions with one
    OPT: FORMERR with the OPT but no question; a question that does not read: header only."""
    import json

    from agility_runtime.dns import state as statemod
    state = statemod.from_bytes(json.dumps(cmp_doc()).encode())
    good = dns.message.make_query("a.cmp.example", "A", use_edns=0, want_dnssec=True).to_wire()
    question = good[12:-11]
    opt = good[-11:]
    two_opts = good[:10] + b"\x00\x02" + good[12:] + opt
    r = handle(state, two_opts)
    assert r[3] & 0x0F == dns.rcode.FORMERR and r[4:12] == b"\x00\x01\x00\x00\x00\x00\x00\x00"
    assert r[12:] == question
    two_questions = good[:4] + b"\x00\x02" + good[6:12] + question + question + opt
    r = handle(state, two_questions)
    assert r[3] & 0x0F == dns.rcode.FORMERR and r[4:12] == b"\x00\x00\x00\x00\x00\x00\x00\x01"
    assert r[12:15] == b"\x00\x00\x29" and r[19] & 0x80  # OPT, DO copied
    bad_name = good[:12] + b"\x3f" + b"a" * 3
    r = handle(state, bad_name)
    assert r[3] & 0x0F == dns.rcode.FORMERR and len(r) == 12


def test_serial_auto_in_a_file_loaded_directly_comes_from_the_clock():
    import json
    import time

    from agility_runtime.dns import state as statemod
    doc = cmp_doc()
    doc["zones"]["cmp.example"]["soa"]["serial"] = "auto"
    before = int(time.time())
    state = statemod.from_bytes(json.dumps(doc).encode())
    r = dns.message.from_wire(handle(state, dns.message.make_query("cmp.example", "SOA").to_wire()))
    assert before <= r.answer[0][0].serial <= int(time.time())
