# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_wire: the hand-made DNS codec agrees with dnspython; addresses stay in prefix."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import random

import dns.message
import dns.rrset
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.agility.addressing.plugins.module_utils import _wire as W

label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
names = st.lists(label, min_size=1, max_size=5).map(lambda ls: ".".join(ls) + ".")


@settings(max_examples=150, deadline=None)
@given(name=names, v4=st.lists(st.integers(0, 2 ** 32 - 1), max_size=6),
       v6=st.lists(st.integers(0, 2 ** 128 - 1), max_size=4), ttl=st.integers(0, 2 ** 31 - 1),
       cname=st.booleans())
def test_parse_matches_dnspython(name, v4, v6, ttl, cname):
    qid, wire = W.build_query(name, "A", qid=4242)
    q = dns.message.from_wire(wire)
    assert q.question[0].name.to_text().lower() == name.lower() and q.id == 4242
    r = dns.message.make_response(q)
    owner = name
    if cname:
        owner = "target." + name
        r.answer.append(dns.rrset.from_text(name, ttl, "IN", "CNAME", owner))
    if v4:
        r.answer.append(dns.rrset.from_text(owner, ttl, "IN", "A",
                                            *[str(ipaddress.IPv4Address(a)) for a in v4]))
    if v6:
        r.answer.append(dns.rrset.from_text(owner, ttl, "IN", "AAAA",
                                            *[str(ipaddress.IPv6Address(a)) for a in v6]))
    parsed = W.parse_response(r.to_wire())  # dnspython compresses owner names
    want = sorted(set(str(ipaddress.IPv4Address(a)) for a in v4)) + \
        sorted(set(str(ipaddress.IPv6Address(a)) for a in v6), key=ipaddress.ip_address)
    got = [a["address"] for a in parsed["answers"] if "address" in a]
    assert sorted(got, key=lambda x: (":" in x, ipaddress.ip_address(x))) == \
        sorted(want, key=lambda x: (":" in x, ipaddress.ip_address(x)))
    assert all(a["ttl"] == ttl for a in parsed["answers"])
    assert all(a["name"] == owner.lower() for a in parsed["answers"] if "address" in a)
    if cname:
        assert parsed["answers"][0]["target"] == owner.lower()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_wire_error_only(data):
    try:
        W.parse_response(data)
    except W.WireError:
        pass


def test_pointer_loop_is_refused():
    msg = b"\x00\x01\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(W.WireError):
        W.parse_response(msg)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["198.18.0.0/15", "198.18.0.0/24", "198.18.4.7/32", "2001:db8::/32",
                        "2001:db8:1::/126", "192.0.2.0/30"]),
       st.integers(1, 50), st.integers(0, 2 ** 32))
def test_random_addresses_distinct_and_inside(prefix, count, seed):
    net = ipaddress.ip_network(prefix)
    got = W.random_addresses(prefix, count, random.Random(seed))
    assert len(got) == min(count, net.num_addresses) == len(set(got))
    assert all(ipaddress.ip_address(a) in net for a in got)
