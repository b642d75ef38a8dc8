"""Authoritative behaviour against the real server on loopback (UDP/TCP, IPv4/IPv6)."""

import ipaddress
import socket
import time

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from dns_helpers import query, read_frame, tcp_frame


def addrs(resp, rdtype="A"):
    return [rd.address for rrset in resp.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype) for rd in rrset]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("tcp", [False, True])
def test_policy_answer_udp_tcp_ipv4_ipv6(server, host, tcp):
    r = query("www.example.com", "A", server.port, host=host, tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    (a,) = addrs(r)
    assert ipaddress.ip_address(a) in ipaddress.ip_network("198.18.16.0/20")
    assert r.answer[0].ttl == 300
    r6 = query("www.example.com", "AAAA", server.port, host=host, tcp=tcp)
    (a6,) = addrs(r6, "AAAA")
    assert ipaddress.ip_address(a6) in ipaddress.ip_network("2001:db8:16::/64")


def test_random_addresses_vary(server):
    seen = {addrs(query("h%d.example.com" % i, "A", server.port))[0] for i in range(30)}
    assert len(seen) > 20  # a /20: 4096 addresses, collisions are rare


def test_aa_set_ra_clear_rd_copied(server):
    r = query("www.example.com", "A", server.port)  # dnspython sets RD
    assert r.flags & dns.flags.AA and r.flags & dns.flags.RD
    assert not r.flags & dns.flags.RA
    q = dns.message.make_query("www.example.com", "A")
    q.flags &= ~dns.flags.RD
    r = dns.query.udp(q, "127.0.0.1", port=server.port, timeout=2)
    assert r.flags & dns.flags.AA and not r.flags & dns.flags.RD


def test_per_pop_policy_for_account_type(server):
    r = query("www.pro.example", "A", server.port)
    assert addrs(r) == ["198.18.32.3"]  # offset 0 + pop index 3
    assert r.answer[0].ttl == 60


def test_address_diversity_two_addresses_from_two_pools(server):
    r = query("x.diverse.example", "A", server.port)
    a, b = sorted(addrs(r), key=ipaddress.ip_address)
    assert ipaddress.ip_address(a) in ipaddress.ip_network("198.18.16.0/20")
    assert ipaddress.ip_address(b) in ipaddress.ip_network("198.18.128.0/24")


def test_apex_soa_and_ns_with_glue(server):
    r = query("example.com", "SOA", server.port)
    soa = r.answer[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa[0].serial == 7 and soa[0].minimum == 120
    assert r.flags & dns.flags.AA
    r = query("example.com", "NS", server.port)
    assert sorted(rd.target.to_text() for rd in r.answer[0]) == ["ns1.example.com.", "ns2.example.com."]
    glue = {(rr.name.to_text(), rr.rdtype) for rr in r.additional}
    assert ("ns1.example.com.", dns.rdatatype.A) in glue and ("ns2.example.com.", dns.rdatatype.A) in glue


def test_static_a_wins_over_policy(server):
    assert addrs(query("ns1.example.com", "A", server.port)) == ["192.0.2.53"]
    r = query("ns2.example.com", "AAAA", server.port)  # static A only: no policy AAAA for glue names
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.SOA


def test_nxdomain_vs_nodata_with_soa_and_negative_ttl(server):
    # hostnames list: www and api.v1 exist, v1 is an empty non-terminal, nope does not exist
    r = query("nope.pro.example", "A", server.port)
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    assert r.authority[0].ttl == 60  # min(soa ttl 60, minimum default 300)
    r = query("v1.pro.example", "A", server.port)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    r = query("www.pro.example", "TXT", server.port)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    r = query("txt.example.com", "MX", server.port)  # NODATA in a wildcard zone
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert r.authority[0].ttl == 120  # min(3600, 120)


def test_static_records_cname_referral(server):
    r = query("txt.example.com", "TXT", server.port)
    assert r.answer[0].ttl == 60 and b"hello" in r.answer[0][0].strings[0]
    r = query("example.com", "MX", server.port)
    assert r.answer[0][0].exchange.to_text() == "mail.example.com."
    r = query("alias.example.com", "A", server.port)
    assert r.answer[0].rdtype == dns.rdatatype.CNAME
    r = query("deep.sub.example.com", "A", server.port)
    assert not r.flags & dns.flags.AA and not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.NS
    assert r.additional[0][0].address == "192.0.2.99"


def test_refused_outside_zones_no_recursion(server):
    r = query("www.example.org", "A", server.port)
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.flags & dns.flags.RA and not r.flags & dns.flags.AA and not r.answer
    r = query("example.com", "A", server.port, rdclass="CH")
    assert r.rcode() == dns.rcode.REFUSED
    r = query("example.com", "AXFR", server.port, tcp=True)
    assert r.rcode() == dns.rcode.REFUSED


def raw_udp(port, payload, host="127.0.0.1", timeout=1.0):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (host, port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def test_formerr_for_malformed_queries(server):
    good = dns.message.make_query("www.example.com", "A").to_wire()
    two_questions = good[:4] + b"\x00\x02" + good[6:] + good[12:]
    r = raw_udp(server.port, two_questions)
    assert r[:2] == good[:2] and r[2] & 0x80 and r[3] & 0x0F == dns.rcode.FORMERR
    truncated_question = good[:-3]
    r = raw_udp(server.port, truncated_question)
    assert r[3] & 0x0F == dns.rcode.FORMERR
    pointer_loop = good[:12] + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    r = raw_udp(server.port, pointer_loop)
    assert r[3] & 0x0F == dns.rcode.FORMERR
    assert raw_udp(server.port, b"\x12\x34\x01") is None  # no header: silence
    response_bit = good[:2] + bytes((good[2] | 0x80,)) + good[3:]
    assert raw_udp(server.port, response_bit) is None  # never answer a response


@pytest.mark.parametrize("opcode", [dns.opcode.IQUERY, dns.opcode.STATUS, dns.opcode.NOTIFY, dns.opcode.UPDATE, 7])
def test_notimp_for_other_opcodes(server, opcode):
    q = bytearray(dns.message.make_query("www.example.com", "A").to_wire())
    q[2] = (q[2] & 0x87) | (opcode << 3)
    r = raw_udp(server.port, bytes(q))
    assert r[:2] == q[:2] and r[3] & 0x0F == dns.rcode.NOTIMP and (r[2] >> 3) & 0x0F == opcode


def test_badvers_for_edns_version_1(server):
    r = query("www.example.com", "A", server.port, use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer


def test_edns_payload_and_truncation_then_tcp(server):
    # the big TXT set is ~820 bytes on the wire
    r = query("big.example.com", "TXT", server.port)  # no EDNS: 512
    assert r.flags & dns.flags.TC and not r.answer
    r = query("big.example.com", "TXT", server.port, use_edns=0, payload=600)
    assert r.flags & dns.flags.TC
    r = query("big.example.com", "TXT", server.port, use_edns=0, payload=400)  # < 512 counts as 512
    assert r.flags & dns.flags.TC
    r = query("big.example.com", "TXT", server.port, use_edns=0, payload=1232)
    assert not r.flags & dns.flags.TC and len(r.answer[0][0].strings) == 4
    assert r.payload == 1232  # what we advertise
    q = dns.message.make_query("big.example.com", "TXT")
    r, used_tcp = dns.query.udp_with_fallback(q, "127.0.0.1", port=server.port, timeout=2)
    assert used_tcp and not r.flags & dns.flags.TC and len(r.answer[0][0].strings) == 4


def test_do_bit_echoed_and_edns_on_fast_path(server):
    r = query("www.example.com", "A", server.port, want_dnssec=True)
    assert r.ednsflags & dns.flags.DO and r.payload == 1232
    r = query("www.example.com", "A", server.port, use_edns=0)
    assert r.edns == 0 and not r.ednsflags & dns.flags.DO


def ecs_query(name, port, address, srclen):
    opt = dns.edns.ECSOption(address, srclen)
    return dns.query.udp(dns.message.make_query(name, "A", use_edns=0, options=[opt]), "127.0.0.1",
                         port=port, timeout=2)


def ecs_of(r):
    (opt,) = [o for o in r.options if isinstance(o, dns.edns.ECSOption)]
    return opt


def test_ecs_echoed_with_scope(server):
    r = ecs_query("x.ecs.example", server.port, "10.1.2.0", 24)  # matches client_subnets 10.1.0.0/16
    assert addrs(r) == ["198.18.48.0"]
    o = ecs_of(r)
    assert (o.address, o.srclen, o.scopelen) == ("10.1.2.0", 24, 16)
    r = ecs_query("x.ecs.example", server.port, "192.0.2.0", 24)  # not in it: the client still decided
    assert ipaddress.ip_address(addrs(r)[0]) in ipaddress.ip_network("198.18.16.0/20")
    assert ecs_of(r).scopelen == 16
    r = ecs_query("www.example.com", server.port, "10.1.2.0", 24)  # policy ignores the client
    assert ecs_of(r).scopelen == 0 and ecs_of(r).srclen == 24
    r = ecs_query("txt.example.com", server.port, "10.1.2.0", 24)
    assert ecs_of(r).scopelen == 0
    # no ECS option in the query: the source address is the client (127.0.0.1, not in 10.1/16)
    r = query("x.ecs.example", "A", server.port)
    assert not r.options and addrs(r)[0] != "198.18.48.0"


@pytest.mark.parametrize("name,rdtype", [("wWw.ExAmPle.CoM", "A"), ("WWW.EXAMPLE.COM", "AAAA"),
                                         ("NoPe.Pro.Example", "A"), ("TXT.example.COM", "TXT"),
                                         ("Www.Example.Org", "A")])
@pytest.mark.parametrize("tcp", [False, True])
def test_question_case_preserved(server, name, rdtype, tcp):
    q = dns.message.make_query(name, rdtype)
    wire = q.to_wire()
    if tcp:
        r = dns.query.tcp(q, "127.0.0.1", port=server.port, timeout=2)
    else:
        r = dns.query.udp(q, "127.0.0.1", port=server.port, timeout=2)
    assert r.question[0].name.to_text() == name + "."
    raw = r.to_wire()
    assert raw[12:12 + len(wire) - 12 - 0][:len(name) + 2] == wire[12:12 + len(name) + 2]
    for rrset in r.answer:
        assert rrset.name.to_text() == name + "."


def test_tcp_pipelining(server):
    names = ["p%d.example.com" % i for i in range(10)] + ["example.com", "nope.pro.example"]
    queries = [dns.message.make_query(n, "SOA" if n == "example.com" else "A") for n in names]
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
        s.sendall(b"".join(tcp_frame(q.to_wire()) for q in queries))  # all at once
        answers = [dns.message.from_wire(read_frame(s)) for dummy in queries]
    assert [a.id for a in answers] == [q.id for q in queries]
    assert answers[-1].rcode() == dns.rcode.NXDOMAIN
    assert answers[-2].answer[0].rdtype == dns.rdatatype.SOA


def test_tcp_idle_timeout(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(tcp_frame(dns.message.make_query("a.example.com", "A").to_wire()))
        assert read_frame(s) is not None
        start = time.monotonic()
        assert s.recv(10) == b""  # server closes the idle connection (timeout 1.5 s)
        assert 0.5 < time.monotonic() - start < 4.5


def test_any_query_minimal_answer(server):
    r = query("www.example.com", "ANY", server.port)
    assert r.answer[0].rdtype == dns.rdatatype.HINFO
