"""Malformed packets: never crash, never answer garbage, keep answering good queries."""

import json
import os
import socket
import struct

import dns.edns
import dns.message
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from agility_runtime.dns import handler, state as statemod, stats as statsmod

from dns_helpers import policy_doc, query

STATE = statemod.from_bytes(json.dumps(policy_doc()).encode())
GOOD = dns.message.make_query("www.example.com", "A").to_wire()
GOOD_EDNS = dns.message.make_query("www.example.com", "AAAA", use_edns=0).to_wire()
# COOKIE (client + server part), ECS and NSID: the option parser shared by both paths
GOOD_OPTS = dns.message.make_query("WwW.example.com", "A", use_edns=0, options=[
    dns.edns.GenericOption(10, bytes(range(24))), dns.edns.ECSOption("198.51.100.0", 24),
    dns.edns.GenericOption(3, b"")]).to_wire()


def check_response(query_bytes, resp):
    """A response is either nothing or a well-formed DNS response to this query."""
    if resp is None:
        return
    assert len(query_bytes) >= 12 and not query_bytes[2] & 0x80, "answered something that is not a query"
    assert resp[:2] == query_bytes[:2] and resp[2] & 0x80
    msg = dns.message.from_wire(resp)  # must parse
    assert msg.id == struct.unpack(">H", query_bytes[:2])[0]


def hand_made():
    h = GOOD[:12]
    cases = [
        b"", b"\x00", GOOD[:11], GOOD[:12], GOOD[:13], GOOD[:-1], GOOD + b"\x00",
        h[:4] + b"\xff\xff" + h[6:] + GOOD[12:],                     # qdcount 65535
        h[:6] + b"\xff\xff\xff\xff\xff\xff" + GOOD[12:],             # huge an/ns/ar counts
        h + b"\xc0\x0c\x00\x01\x00\x01",                             # pointer to itself
        h + b"\x01a\xc0\x0c\x00\x01\x00\x01",                       # pointer back to the start: loop
        h + b"\xc0\x0e\x00\x01\x00\x01" + b"\xc0\x0c",               # two pointers, each to the other
        h + b"\xc0\xff\x00\x01\x00\x01",                             # pointer past the end
        h + b"\x40abc\x00\x00\x01\x00\x01",                          # extended label type
        h + b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63 + b"\x3f" + b"d" * 63
        + b"\x00\x00\x01\x00\x01",                                   # name longer than 255
        h + b"\x05ab\x00\x00\x01\x00\x01",                           # label runs past the end
        GOOD_EDNS[:-11] + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x08\x00\x08\x00\x04\x00\x01\x18",  # OPT rdlen lie
        GOOD_EDNS[:-11] + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x08\x00\x08\x00\x04\x00\x01\x40\x00",  # ECS /64 on v4
        GOOD_EDNS + GOOD_EDNS[-11:],                                 # two OPT records (arcount 1)
        GOOD_EDNS[:10] + b"\x00\x02" + GOOD_EDNS[12:] + GOOD_EDNS[-11:],  # two OPT records
        os.urandom(12), os.urandom(512), b"\x00" * 4096,
        GOOD_OPTS[:-1], GOOD_OPTS[:-9], GOOD_OPTS + b"\x00",        # options cut short / trailing
        GOOD_OPTS[:-6] + b"\x00\x0a\x00\x00",                        # ECS replaced by an empty COOKIE
    ]
    return cases


@pytest.mark.parametrize("packet", hand_made())
def test_hand_made_malformed_in_process(packet):
    stats = statsmod.Stats()
    for tcp in (False, True):
        resp = handler.handle(STATE, packet, ("127.0.0.1", 1), b"\x7f\x00\x00\x01", stats, 1232, tcp=tcp)
        check_response(packet, resp)
    assert not stats.dropped.get("internal_error")


def _mutate(data, flips, cut, counts):
    buf = bytearray(data)
    for pos, val in flips:
        buf[pos % len(buf)] = val
    if counts is not None:
        buf[4:12] = counts
    return bytes(buf[:cut]) if cut is not None else bytes(buf)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=600),
    st.builds(_mutate, st.sampled_from([GOOD, GOOD_EDNS, GOOD_OPTS]),
              st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
              st.one_of(st.none(), st.integers(0, 60)),
              st.one_of(st.none(), st.binary(min_size=8, max_size=8))),
))
def test_property_random_packets_in_process(packet):
    stats = statsmod.Stats()
    for tcp in (False, True):
        resp = handler.handle(STATE, packet, ("127.0.0.1", 1), b"\x7f\x00\x00\x01", stats, 1232, tcp=tcp)
        check_response(packet, resp)
    assert not stats.dropped.get("internal_error")


def test_live_server_survives_garbage_and_keeps_answering(server):
    """UDP and TCP: each malformed packet is followed by a good query that must be answered."""
    import random
    rng = random.Random(7)
    packets = hand_made()
    for dummy in range(400):
        base = bytearray(rng.choice([GOOD, GOOD_EDNS]))
        for dummy in range(rng.randint(1, 4)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        packets.append(bytes(base[:rng.randint(0, len(base))]) if rng.random() < 0.3 else bytes(base))
    packets += [os.urandom(rng.randint(0, 300)) for dummy in range(200)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect(("127.0.0.1", server.port))
    answered = 0
    for i, pkt in enumerate(packets):
        if pkt:
            s.send(pkt)
        probe = dns.message.make_query("g%d.example.com" % i, "A")
        probe.id = 0xBEEF
        s.send(probe.to_wire())
        while True:
            resp = s.recv(65535)
            if resp[:2] == b"\xbe\xef" and len(resp) > 12:
                msg = dns.message.from_wire(resp)
                if msg.question and msg.question[0].name.to_text() == "g%d.example.com." % i:
                    answered += 1
                    break
            check_response(pkt, resp)
    s.close()
    assert answered == len(packets)
    # TCP: garbage frames on one connection, good query afterwards on a new one
    for pkt in packets[:40]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as c:
            c.sendall(struct.pack(">H", len(pkt)) + pkt)
            c.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = c.recv(65535)
                if not chunk:
                    break
                data += chunk
            if data:
                (n,) = struct.unpack(">H", data[:2])
                check_response(pkt, data[2:2 + n])
    assert query("after.example.com", "A", server.port, tcp=True).answer
    assert "# TYPE agility_dns_dropped_total counter" in server.metrics()
    for proto in ("udp", "tcp"):
        assert server.metric("agility_dns_dropped_total", reason="internal_error", proto=proto) == 0
    assert server.proc.poll() is None
