"""Response rate limiting: the limiter against a pure model, its guarantees as
properties, the slip answer fuzzed, and the real server limiting one prefix only."""

import socket
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import hypothesis.strategies as st
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agility_runtime.dns import rrl
from agility_runtime.dns.source import prefix_key

SOURCES = ["192.0.2.1", "192.0.2.200", "198.51.100.7", "2001:db8:0:ff::1", "2001:db8:0:1::1"]


class ModelBucket:
    """One prefix's bucket in the plainest form: tokens refill linearly up to burst."""

    def __init__(self, burst, now):
        self.tokens, self.last, self.limited = burst, now, 0


class LimiterMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.conf = rrl.settings(rate=4, burst=3, slip=2, ipv4_prefix=24, ipv6_prefix=56, table_size=3)
        self.limiter = rrl.Limiter(self.conf)
        self.model = {}
        self.now = 100.0
        self.purged_at = None

    @rule(dt=st.sampled_from([0.0, 0.01, 0.1, 0.25, 1.0, 5.0]))
    def tick(self, dt):
        self.now += dt

    @rule(source=st.sampled_from(SOURCES), cookie=st.booleans())
    def answer(self, source, cookie):
        key = prefix_key(source, 24, 56)
        got = self.limiter.decide(key, self.now, cookie)
        assert got == self._model_decide(key, cookie)

    def _model_decide(self, key, cookie):
        conf = self.conf
        bucket = self.model.get(key)
        if bucket is None:
            if cookie:
                return rrl.PASS
            if len(self.model) >= conf.table_size:
                if self.purged_at is None or self.now >= self.purged_at + 1.0:
                    self.purged_at = self.now
                    for k in [k for k, b in self.model.items()
                              if b.tokens + (self.now - b.last) * conf.rate >= conf.burst]:
                        del self.model[k]
            if len(self.model) >= conf.table_size:
                key = "overflow"
                bucket = self.model.get(key)
            if bucket is None:
                bucket = self.model[key] = ModelBucket(conf.burst, self.now)
        bucket.tokens = min(conf.burst, bucket.tokens + (self.now - bucket.last) * conf.rate)
        bucket.last = self.now
        if cookie:
            return rrl.PASS
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return rrl.PASS
        bucket.limited += 1
        return rrl.SLIP if bucket.limited % conf.slip == 0 else rrl.DROP

    @invariant()
    def bounded(self):
        assert len(self.limiter.buckets) <= self.conf.table_size + 1  # + the overflow bucket


LimiterMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLimiterModel = LimiterMachine.TestCase


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200),
       rate=st.sampled_from([1.0, 5.0, 50.0]), burst=st.sampled_from([1.0, 5.0, 20.0]),
       slip=st.integers(min_value=0, max_value=4))
def test_a_prefix_never_gets_more_than_burst_plus_rate(gaps, rate, burst, slip):
    limiter = rrl.Limiter(rrl.settings(rate, burst, slip, 24, 56, 100))
    now = 0.0
    passed = []
    limited = slips = 0
    for gap in gaps:
        now += gap
        verdict = limiter.decide(7, now)
        if verdict == rrl.PASS:
            passed.append(now)
        else:
            limited += 1
            slips += verdict == rrl.SLIP
    # every window [t0, t1] holds at most burst + rate * (t1 - t0) full answers
    for i, t0 in enumerate(passed):
        for j in range(i, len(passed)):
            assert j - i + 1 <= burst + rate * (passed[j] - t0) + 1e-6
    assert slips == (limited // slip if slip else 0)
    # another prefix is untouched by this one's flood
    assert limiter.decide(8, now) == rrl.PASS


def test_steady_client_at_the_rate_is_never_limited():
    limiter = rrl.Limiter(rrl.settings(10, 10, 2, 24, 56, 100))
    assert all(limiter.decide(1, i * 0.1) == rrl.PASS for i in range(1000))


def test_cookie_clients_are_exempt_and_spend_nothing():
    limiter = rrl.Limiter(rrl.settings(1, 1, 1, 24, 56, 100))
    assert all(limiter.decide(1, 0.0, cookie_valid=True) == rrl.PASS for dummy in range(50))
    assert limiter.decide(1, 0.0) == rrl.PASS       # the bucket is still full
    assert limiter.decide(1, 0.0) == rrl.SLIP       # now it is empty (slip 1)
    assert limiter.decide(1, 0.0, cookie_valid=True) == rrl.PASS


def test_prefixes_v4_24_v6_56():
    k = rrl.Limiter(rrl.settings(1, 1, 2, 24, 56, 10)).key
    assert k("192.0.2.1") == k("192.0.2.254") != k("192.0.3.1")
    assert k("2001:db8:0:ff::1") == k("2001:db8:0:1::9") != k("2001:db8:0:100::1")
    assert k("::ffff:192.0.2.9") == k("192.0.2.1")


def test_per_worker_share():
    conf = rrl.settings(100, None, 2, 24, 56, 10).for_workers(4)
    assert conf.rate == 25 and conf.burst == 25


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_slip_answer_of_any_packet(data):
    out = rrl.truncated(data)
    if len(data) < 12 or data[2] & 0x80:
        assert out is None
        return
    assert out[:2] == data[:2] and out[2] & 0x82 == 0x82 and out[6:12] == b"\x00" * 6
    assert len(out) == 12 or out[12:] == data[12:len(out)]


@given(name=st.lists(st.text(alphabet="abcXYZ019", min_size=1, max_size=12), min_size=1, max_size=4).map(".".join),
       rdtype=st.sampled_from(["A", "AAAA", "TXT"]), edns=st.booleans())
@settings(max_examples=50, deadline=None)
def test_slip_answer_parses_and_keeps_the_question(name, rdtype, edns):
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else None)
    r = dns.message.from_wire(rrl.truncated(q.to_wire()))
    assert r.id == q.id and r.flags & dns.flags.TC and r.flags & dns.flags.QR
    assert r.question == q.question and not r.answer and r.rcode() == dns.rcode.NOERROR


def _burst(port, source, n, names="r%d.example.com", options=None):
    """Send n queries from ``source`` at once; (full answers, truncated answers)."""
    full = tc = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        for i in range(n):
            q = dns.message.make_query(names % i, "A", use_edns=0 if options else None, options=options)
            s.sendto(q.to_wire(), ("127.0.0.1", port))
        s.settimeout(0.5)
        try:
            while True:
                r = dns.message.from_wire(s.recv(4096))
                if r.flags & dns.flags.TC:
                    tc += 1
                else:
                    full += 1
        except socket.timeout:
            pass
    return full, tc


def test_server_limits_the_flooding_prefix_only(make_server):
    srv = make_server(args=("--rrl-rate", "5", "--rrl-burst", "20", "--rrl-slip", "2"), v6=False)
    time.sleep(0.5)  # wait_ready's probes spent a token or two of 127.0.0.0/24
    start = time.monotonic()
    full, tc = _burst(srv.port, "127.0.0.1", 200)
    elapsed = time.monotonic() - start
    assert 20 - 2 <= full <= 20 + 5 * elapsed + 1
    assert abs(tc - (200 - full) / 2) <= 1
    assert _burst(srv.port, "127.0.1.1", 20) == (20, 0)   # another /24 is not limited
    # TCP is never limited: the truncated answer's retry works
    q = dns.message.make_query("tcp.example.com", "A")
    assert dns.query.tcp(q, "127.0.0.1", port=srv.port, timeout=2).answer
    assert srv.metric("agility_dns_rrl_limited_total", action="slipped") == tc
    assert srv.metric("agility_dns_rrl_limited_total", action="dropped") == 200 - full - tc


def test_server_cookie_clients_are_exempt_on_the_wire(make_server):
    """A resolver that presents the server cookie we gave it is not spoofed: RRL lets its
    whole burst through, while the same /24 without the cookie is limited."""
    srv = make_server(args=("--rrl-rate", "5", "--rrl-burst", "10", "--rrl-slip", "2"), v6=False)
    client = b"\x07" * 8
    first = dns.query.udp(dns.message.make_query("c.example.com", "A", use_edns=0,
                                                 options=[dns.edns.GenericOption(10, client)]),
                          "127.0.0.1", port=srv.port, source="127.0.3.1", timeout=2)
    cookie = [o for o in first.options if o.otype == 10][0].to_wire()
    assert cookie[:8] == client and len(cookie) == 24
    time.sleep(0.5)
    full, tc = _burst(srv.port, "127.0.3.1", 100, options=[dns.edns.GenericOption(10, cookie)])
    assert (full, tc) == (100, 0)
    full, tc = _burst(srv.port, "127.0.3.1", 100)   # same /24, no cookie: limited
    assert full <= 10 + 5 * 2 + 1 and tc > 0
