"""EDNS options: DNS cookies (RFC 7873 / RFC 9018), Client Subnet, NSID, 0x20 case,
in process (fast path == dnspython path) and against a live server."""

import ipaddress
import json
import shutil
import socket
import subprocess
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from hypothesis import given, settings, strategies as st

from agility_runtime import policy
from agility_runtime.dns import cookies, edns, fastpath, handler, slowpath, state as statemod, stats as statsmod
from agility_runtime.dns.query import Query

from dns_helpers import Server, policy_doc

SECRET = "e5e973e5a6b2a43f48e7dc849e37bfcf"
STATE = statemod.from_bytes(json.dumps(policy_doc()).encode())
PEER = ("198.51.100.100", 5353)
LOCAL = b"\x7f\x00\x00\x01"


# --- RFC 9018 Appendix A test vectors ---------------------------------------------

@pytest.mark.parametrize("client,ip,stamp,want", [
    ("2464c4abcf10c957", "198.51.100.100", 1559731985, "010000005cf79f111f8130c3eee29480"),  # A.1
    ("2464c4abcf10c957", "198.51.100.100", 1559734385, "010000005cf7a871d4a564a1442aca77"),  # A.2
])
def test_rfc9018_vectors_make(client, ip, stamp, want):
    got = cookies.server_cookie(bytes.fromhex(SECRET), bytes.fromhex(client),
                                ipaddress.ip_address(ip).packed, stamp)
    assert got.hex() == want


@pytest.mark.parametrize("secret,ip,cookie,valid", [
    (SECRET, "203.0.113.203", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", True),  # A.3 (reserved set)
    ("dd3bdf9344b678b185a6f5cb60fca715", "2001:db8:220:1:59de:d0f4:8769:82b8",
     "22681ab97d52c298010000005cf7c57926556bd0934c72f8", True),                            # A.4 old secret
    ("445536bcd2513298075a5d379663c962", "2001:db8:220:1:59de:d0f4:8769:82b8",
     "22681ab97d52c298010000005cf7c57926556bd0934c72f8", False),                           # A.4 new secret
    (SECRET, "203.0.113.204", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", False),  # other address
])
def test_rfc9018_vectors_check(secret, ip, cookie, valid, monkeypatch):
    raw = bytes.fromhex(cookie)
    jar = cookies.Cookies(b"\x00" * 16, clock=lambda: 0)
    # check() with the vector's secret as the current one, at the vector's own time
    monkeypatch.setattr(jar, "secrets", lambda now: (bytes.fromhex(secret), b"\xff" * 16))
    stamp = int.from_bytes(raw[12:16], "big")
    got = jar.check(raw[:8], raw[8:], ipaddress.ip_address(ip).packed, now=stamp + 10)
    assert (got == raw[8:]) is valid


def test_cookie_rotation_and_age():
    now = [7199]
    jar = cookies.Cookies(b"k" * 16, rotate_seconds=7200, clock=lambda: now[0])
    ip = b"\xc6\x33\x64\x64"
    made = jar.make(b"c" * 8, ip)
    assert jar.check(b"c" * 8, made, ip) == made
    now[0] = 7300                                      # next epoch: made with the previous secret
    assert jar.check(b"c" * 8, made, ip) == made
    fresh = jar.make(b"c" * 8, ip)
    assert fresh != made and jar.check(b"c" * 8, fresh, ip) == fresh
    now[0] = 7199 + 3601                               # more than an hour old
    assert jar.check(b"c" * 8, made, ip) is None
    now[0] = 7199 + 1801                               # more than half an hour: valid, replaced
    renewed = jar.check(b"c" * 8, made, ip)
    assert renewed is not None and renewed != made
    other = cookies.Cookies(b"x" * 16, rotate_seconds=7200, clock=lambda: now[0])
    assert other.check(b"c" * 8, fresh, ip) is None    # another master secret
    assert jar.check(b"c" * 8, made[:-1] + bytes((made[-1] ^ 1,)), ip) is None
    assert jar.check(b"d" * 8, fresh, ip) is None      # another client cookie


def test_rotation_setting_is_checked():
    with pytest.raises(cookies.CookieError):
        cookies.Cookies(b"k" * 16, rotate_seconds=60)
    with pytest.raises(cookies.CookieError):
        cookies.master_from_text("abcd")


# --- in process: the fast path takes option-carrying queries, same bytes as dnspython --

@pytest.fixture(autouse=True)
def fixed_settings(monkeypatch):
    monkeypatch.setattr(policy, "_randbits", lambda k: 0x5A5A5A5A5A5A5A5A5A5A & ((1 << k) - 1))
    monkeypatch.setattr(edns, "SETTINGS", edns.Settings(b"s" * 16, 86400, "pop-test"))
    monkeypatch.setattr(edns.SETTINGS.cookies, "clock", lambda: 1700000000)


def mkq(name, rdtype="A", options=(), do=False, qid=7):
    q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do, options=list(options))
    q.id = qid
    return q.to_wire()


def cookie_opt(data):
    return dns.edns.GenericOption(edns.OPT_COOKIE, data)


def opts_of(wire):
    return {o.otype: o for o in dns.message.from_wire(wire).options}


def valid_cookie(client=b"\x01" * 8, peer=PEER):
    resp = handler.handle(STATE, mkq("www.example.com", options=[cookie_opt(client)]), peer, LOCAL,
                          statsmod.Stats(), 1232)
    return opts_of(resp)[edns.OPT_COOKIE].to_wire()


def both(wire, peer=PEER, tcp=False):
    fq, sq = Query(wire, peer, LOCAL, tcp), Query(wire, peer, LOCAL, tcp)
    return (fastpath.answer(STATE, fq, statsmod.Stats(), 1232), slowpath.respond(STATE, sq, statsmod.Stats(), 1232),
            fq, sq)


ECS24 = dns.edns.ECSOption("198.51.100.0", 24)
NSID = dns.edns.GenericOption(edns.OPT_NSID, b"")


@pytest.mark.parametrize("name,options", [
    ("WwW.eXaMpLe.CoM", [cookie_opt(b"\x01" * 8)]),
    ("h1.example.com", [ECS24]),
    ("h2.example.com", [NSID, cookie_opt(b"\x02" * 8), ECS24]),
    ("h3.example.com", [dns.edns.GenericOption(65001, b"xyz")]),       # unknown option: ignored
    ("x.ecs.example", [ECS24]),                                          # client-dependent policy
    ("x.ecs.example", [dns.edns.ECSOption("2001:db8::", 32)]),
])
def test_fast_path_takes_options_and_matches_dnspython(name, options):
    wire = mkq(name, options=options)
    fast, slow, fq, sq = both(wire)
    assert fast is not None, "the fast path should take this query"
    assert fast == slow
    msg = dns.message.from_wire(fast)
    assert msg.rcode() == dns.rcode.NOERROR and msg.answer
    assert msg.question[0].name.to_text() == name + "."    # 0x20: the client's case kept
    assert fq.outcome == sq.outcome == "POLICY"


def test_valid_server_cookie_is_echoed_and_flagged():
    full = valid_cookie()
    assert len(full) == 24 and full[:8] == b"\x01" * 8
    fast, slow, fq, sq = both(mkq("y.example.com", options=[cookie_opt(full)]))
    assert fast is not None and fast == slow
    assert opts_of(fast)[edns.OPT_COOKIE].to_wire() == full
    assert fq.cookie_valid and sq.cookie_valid
    # again, now from the fast path's per-client OPT memo: same bytes, still flagged valid
    again, dummy, fq2, dummy = both(mkq("z.example.com", options=[cookie_opt(full)]))
    assert opts_of(again)[edns.OPT_COOKIE].to_wire() == full and fq2.cookie_valid
    assert fq2.cookie == full
    # a client-only cookie is not a valid server cookie
    fast, slow, fq, sq = both(mkq("y.example.com", options=[cookie_opt(b"\x01" * 8)]))
    assert not fq.cookie_valid and not sq.cookie_valid


def test_bad_server_cookie_gets_badcookie_over_udp_and_an_answer_over_tcp():
    full = valid_cookie()
    bad = full[:-1] + bytes((full[-1] ^ 0xFF,))
    wire = mkq("y.example.com", options=[cookie_opt(bad)])
    resp = handler.handle(STATE, wire, PEER, LOCAL, statsmod.Stats(), 1232)
    msg = dns.message.from_wire(resp)
    assert msg.rcode() == dns.rcode.BADCOOKIE and not msg.answer
    fresh = opts_of(resp)[edns.OPT_COOKIE].to_wire()
    assert fresh[:8] == full[:8] and fresh != bad
    assert dns.message.from_wire(
        handler.handle(STATE, mkq("y.example.com", options=[cookie_opt(fresh)]), PEER, LOCAL,
                       statsmod.Stats(), 1232)).rcode() == dns.rcode.NOERROR
    # the cookie is bound to the client address
    assert dns.message.from_wire(handler.handle(STATE, mkq("y.example.com", options=[cookie_opt(full)]),
                                                ("198.51.100.101", 1), LOCAL, statsmod.Stats(),
                                                1232)).rcode() == dns.rcode.BADCOOKIE
    tcp = dns.message.from_wire(handler.handle(STATE, wire, PEER, LOCAL, statsmod.Stats(), 1232, tcp=True))
    assert tcp.rcode() == dns.rcode.NOERROR and tcp.answer


def test_bad_server_cookie_is_judged_once(monkeypatch):
    """The fast path hands a BADCOOKIE to the slow path; the verdict goes with the query,
    so the cookie is hashed once (check) plus once for the fresh cookie (make), not twice each."""
    full = valid_cookie()
    bad = full[:-1] + bytes((full[-1] ^ 0xFF,))
    jar = edns.SETTINGS.cookies
    calls = []
    for name in ("check", "make"):
        real = getattr(jar, name)
        monkeypatch.setattr(jar, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    resp = handler.handle(STATE, mkq("y.example.com", options=[cookie_opt(bad)]), PEER, LOCAL,
                          statsmod.Stats(), 1232)
    assert dns.message.from_wire(resp).rcode() == dns.rcode.BADCOOKIE
    assert calls == ["check", "make"]


@pytest.mark.parametrize("bad", [
    dns.edns.GenericOption(edns.OPT_COOKIE, b"\x01" * 7),
    dns.edns.GenericOption(edns.OPT_COOKIE, b"\x01" * 12),
    dns.edns.GenericOption(edns.OPT_COOKIE, b"\x01" * 41),
])
def test_malformed_cookie_is_formerr(bad):
    resp = handler.handle(STATE, mkq("www.example.com", options=[bad]), PEER, LOCAL, statsmod.Stats(), 1232)
    assert dns.message.from_wire(resp).rcode() == dns.rcode.FORMERR


def test_ecs_scope_zero_and_nsid():
    resp = handler.handle(STATE, mkq("www.example.com", options=[ECS24, NSID]), PEER, LOCAL,
                          statsmod.Stats(), 1232)
    got = opts_of(resp)
    assert got[edns.OPT_ECS].address == "198.51.100.0" and got[edns.OPT_ECS].srclen == 24
    assert got[edns.OPT_ECS].scopelen == 0
    assert got[edns.OPT_NSID].to_wire() == b"pop-test"
    # no NSID unless asked
    resp = handler.handle(STATE, mkq("www.example.com"), PEER, LOCAL, statsmod.Stats(), 1232)
    assert edns.OPT_NSID not in opts_of(resp)


# --- parser fuzz: only FormErr escapes ---------------------------------------------

@settings(max_examples=800, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.lists(st.tuples(st.sampled_from([3, 8, 10, 12, 65001]), st.binary(max_size=44)), max_size=4).map(
        lambda opts: b"".join(c.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for c, d in opts)),
))
def test_property_parse_options_only_formerr(rdata):
    q = Query(b"", PEER, LOCAL)
    try:
        edns.parse_options(q, rdata)
    except edns.FormErr:
        return
    if q.cookie is not None:
        assert len(q.cookie) == 8 or 16 <= len(q.cookie) <= 40
    if q.ecs is not None:
        family, srclen, addr = q.ecs
        assert family in (1, 2) and len(addr) == (srclen + 7) // 8
        fastpath.ecs_client(q.ecs)  # must not raise


# --- live server: real sockets ------------------------------------------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("edns-live")
    secret = tmp / "cookie.secret"
    secret.write_text(SECRET + "\n")
    srv = Server(tmp, args=["--workers", "2", "--cookie-secret-file", str(secret), "--nsid", "pop-live"])
    yield srv
    srv.stop()


def ask(live, name, options=(), tcp=False, host="127.0.0.1", sport=0):
    q = dns.message.make_query(name, "A", use_edns=0, options=list(options))
    if tcp:
        return dns.query.tcp(q, host, port=live.port, timeout=2)
    return dns.query.udp(q, host, port=live.port, timeout=2, source_port=sport)


def test_live_cookie_round_trip_is_rfc9018(live):
    client = b"\x24\x64\xc4\xab\xcf\x10\xc9\x57"
    for sport in (0, 0, 0):   # several source ports: both workers (SO_REUSEPORT) make and accept
        r = ask(live, "Mixed.CaSe.example.com", [cookie_opt(client)], sport=sport)
        full = opts_of(r.to_wire())[edns.OPT_COOKIE].to_wire()
        assert len(full) == 24 and full[:8] == client
        # the server cookie is RFC 9018 with the epoch secret derived from our master
        jar = cookies.Cookies(bytes.fromhex(SECRET))
        stamp = int.from_bytes(full[12:16], "big")
        assert abs(stamp - time.time()) < 120
        secret = jar.secrets(int(time.time()))[0]
        assert cookies.server_cookie(secret, client, socket.inet_aton("127.0.0.1"), stamp) == full[8:]
        assert r.question[0].name.to_text() == "Mixed.CaSe.example.com."
        for dummy in range(4):
            again = ask(live, "h.example.com", [cookie_opt(full)])
            assert again.rcode() == dns.rcode.NOERROR and again.answer
            assert opts_of(again.to_wire())[edns.OPT_COOKIE].to_wire() == full
    bad = full[:-1] + bytes((full[-1] ^ 1,))
    r = ask(live, "h.example.com", [cookie_opt(bad)])
    assert r.rcode() == dns.rcode.BADCOOKIE
    assert ask(live, "h.example.com", [cookie_opt(bad)], tcp=True).rcode() == dns.rcode.NOERROR


def test_live_ecs_nsid(live):
    r = ask(live, "WWW.example.COM", [ECS24, NSID])
    got = opts_of(r.to_wire())
    assert got[edns.OPT_ECS].scopelen == 0 and got[edns.OPT_ECS].srclen == 24
    assert got[edns.OPT_NSID].to_wire() == b"pop-live"
    assert r.answer and r.question[0].name.to_text() == "WWW.example.COM."


def test_live_dig_cookie_is_good(live):
    dig = shutil.which("dig")
    assert dig, "dig (bind9-dnsutils) is needed for this test"
    out = subprocess.run([dig, "@127.0.0.1", "-p", str(live.port), "+cookie", "+nsid", "www.example.com", "A"],
                         capture_output=True, text=True, timeout=10, check=False).stdout
    assert "status: NOERROR" in out
    assert "(good)" in out, out         # dig checked that the client half came back
    assert 'NSID: 70 6f 70 2d 6c 69 76 65 ("pop-live")' in out or "pop-live" in out


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    """Knot DNS with mod-cookies on a wildcard example.com, for side-by-side behaviour."""
    from dns_helpers import Knot
    srv = Knot(tmp_path_factory.mktemp("knot"), {"example.com": (
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n"
        "* A 198.18.0.1\n")}, sections="mod-cookies:\n  - id: default\n",
        template_conf="    global-module: mod-cookies/default\n")
    yield srv.port
    srv.stop()


def test_cookie_behaviour_side_by_side_with_knot(live, knot):
    """Malformed cookie: FORMERR in both; a server cookie that is not theirs: BADCOOKIE with a
    fresh cookie in both; a client-only cookie: both return client + 16-octet server cookie
    (Knot with BADCOOKIE, we with the answer: RFC 7873 5.2.3 allows either)."""
    client = b"\x11" * 8
    cases = {"malformed": b"\x11" * 12, "foreign": client + bytes.fromhex("0100000000000000aaaaaaaaaaaaaaaa"),
             "client_only": client}
    got = {}
    for who, port in (("agility", live.port), ("knot", knot)):
        for case, data in cases.items():
            q = dns.message.make_query("x.example.com", "A", use_edns=0, options=[cookie_opt(data)])
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
            cookie = {o.otype: o for o in r.options}.get(edns.OPT_COOKIE)
            got[(who, case)] = (r.rcode(), cookie.to_wire() if cookie is not None else None, bool(r.answer))
    for who in ("agility", "knot"):
        assert got[(who, "malformed")][0] == dns.rcode.FORMERR
        rcode, cookie, answered = got[(who, "foreign")]
        assert rcode == dns.rcode.BADCOOKIE and not answered and cookie[:8] == client and len(cookie) == 24
        assert got[(who, "client_only")][1][:8] == client and len(got[(who, "client_only")][1]) == 24
    assert got[("agility", "client_only")][0] == dns.rcode.NOERROR and got[("agility", "client_only")][2]
    assert got[("knot", "client_only")][0] == dns.rcode.BADCOOKIE
