# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The binding model's fast paths agree with the slow rules they stand in for.

A Binding keeps its prefix in the 128-bit form of agility-lookup's hash key and parses the
plain forms without ipaddress (a load-bindings of 100,000 bindings spent most of its time there).
Here: the fast parser gives what ``policy.parse_prefix`` gives, or declines, for any string;
``prefix_text`` is ``str()`` of the network; the byte sort keys order as the networks do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.agility.addressing.plugins.module_utils import sk_lookup_model as M


def slow(text):
    """(version, addr16, bits) by the rule itself, or the Error it raises."""
    try:
        return M.v6_space(M.parse_prefix(text))
    except M.Error as e:
        return e


def fast(text):
    try:
        return M.parse_v6_space(text)
    except M.Error as e:
        return e


def same(a, b):
    if isinstance(a, M.Error) or isinstance(b, M.Error):
        return isinstance(a, M.Error) and isinstance(b, M.Error) and str(a) == str(b)
    return a == b


def networks(version):
    bits = 32 if version == 4 else 128
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return st.tuples(st.integers(0, 2 ** bits - 1), st.integers(0, bits)).map(
        lambda t: cls((t[0] >> (bits - t[1]) << (bits - t[1]) if t[1] else 0, t[1])))


# v6 addresses with long zero runs, the IPv4-mapped and -compatible ranges, and plain ones
v6_edges = st.sampled_from([0, 1, 0xFFFF << 32, (0xFFFF << 32) | 0x01020304, 0x01020304, 1 << 127, 0x20010DB8 << 96,
                            (0x20010DB8 << 96) | 1, (0x20010DB8 << 96) | (1 << 64), (1 << 128) - 1])
v6_nets = (st.tuples(v6_edges, st.integers(0, 128))
           .map(lambda t: ipaddress.IPv6Network((t[0] >> (128 - t[1]) << (128 - t[1]) if t[1] else 0, t[1])))
           | networks(6))
nets = networks(4) | v6_nets
MAPPED = ipaddress.ip_network("::ffff:0:0/96")
# what a binding may hold: the model refuses IPv6 prefixes overlapping the IPv4-mapped range
binding_nets = nets.filter(lambda n: not (n.version == 6 and n.overlaps(MAPPED)))


def texts_of(net):
    """Spellings of a network and of near-misses: exploded, upper case, host bits set, no length,
    leading zeros, a bad length."""
    n, plen = int(net.network_address), net.prefixlen
    addr = net.network_address
    out = [str(net), addr.exploded + "/%d" % plen, str(addr).upper() + "/%d" % plen, str(addr),
           "%s/%d" % (addr, plen + 1), "%s/0%d" % (addr, plen), "%s/+%d" % (addr, plen), "%s/%d " % (addr, plen)]
    if plen < net.max_prefixlen:
        out.append("%s/%d" % (type(addr)(n | 1), plen))
    if net.version == 4:
        out.append("0" + str(net))
        out.append(".".join("%03d" % int(x) for x in str(addr).split(".")) + "/%d" % plen)
    else:
        out.append("::ffff:%s/%d" % (ipaddress.IPv4Address(n & 0xFFFFFFFF), plen))
        out.append(str(addr) + "%eth0/" + str(plen))
    return out


@settings(max_examples=400, deadline=None)
@given(nets)
def test_fast_parse_agrees_with_parse_prefix_on_spellings_of_networks(net):
    for text in texts_of(net):
        assert same(fast(text), slow(text)), text


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF:./%x -", max_size=45))
def test_fast_parse_agrees_with_parse_prefix_on_any_string(text):
    assert same(fast(text), slow(text)), text


@pytest.mark.parametrize("text", ["198.18.0.0/20", "2001:db8::/64", "::/0", "0.0.0.0/0", "::ffff:0:0/96",
                                  "::ffff:198.18.0.0/120", "::/80", "::/81", "::1.2.3.4/128", "198.18.0.1/24",
                                  "1.2.3.4", "2001:DB8::/32", "2001:db8::/032", "010.0.0.0/8", "1:2:3:4:5:6:7::/128"])
def test_fast_parse_agrees_on_edge_spellings(text):
    assert same(fast(text), slow(text))


@settings(max_examples=400, deadline=None)
@given(binding_nets)
def test_prefix_text_is_str_of_the_network(net):
    version, addr16, bits = M.v6_space(net)
    assert M.prefix_text(version, addr16, bits) == str(net)
    assert M.network_of(addr16, bits) == net


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(M.PROTOCOLS), binding_nets, st.sampled_from([0, 53, 80, 443, 65535]),
                          st.sampled_from(["a", "b", "web", "web2"])), max_size=20))
def test_byte_sort_keys_order_as_the_networks_do(items):
    bs = list({b.key: b for b in (M.Binding(p, net, port, label) for p, net, port, label in items)}.values())

    def by_networks(b):
        return (b.prefix.version, b.protocol, b.prefix.network_address.packed, b.prefix.prefixlen, b.port, b.label)

    assert sorted(bs, key=M.sort_key) == sorted(bs, key=by_networks)
    specific = sorted(bs, key=lambda b: (b.specificity(), by_networks(b)), reverse=True)
    assert [("put", b) for b in specific] == M.plan([], bs)


def test_a_binding_from_its_hash_key_is_the_same_binding():
    for text in ("198.18.0.0/20", "2001:db8::/64", "0.0.0.0/0", "::/81"):
        b = M.Binding("udp", text, 443, "web")
        again = M.Binding.from_key(b.key, "web")
        assert again == b and again.prefix == b.prefix and again.version == b.version
        assert again.as_dict() == {"protocol": "udp", "prefix": str(ipaddress.ip_network(text)), "port": 443,
                                   "label": "web"}
