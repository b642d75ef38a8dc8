# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of address selection, stage arithmetic and partitioning."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.agility.addressing.plugins.module_utils import policy as P

v4_announced = st.builds(
    lambda base, length: ipaddress.ip_network((base >> (32 - length) << (32 - length), length)),
    st.integers(0, 2 ** 32 - 1), st.integers(8, 32))
v6_announced = st.builds(
    lambda base, length: ipaddress.ip_network((base >> (128 - length) << (128 - length), length)),
    st.integers(0, 2 ** 128 - 1), st.integers(16, 128)).filter(lambda n: not n.overlaps(P.V4_MAPPED))


@st.composite
def announced_and_stage(draw):
    net = draw(st.one_of(v4_announced, v6_announced))
    length = draw(st.integers(net.prefixlen, net.max_prefixlen))
    index = draw(st.integers(0, (1 << (length - net.prefixlen)) - 1))
    return net, length, index


@given(announced_and_stage())
def test_stage_prefix_lies_inside_announced(case):
    net, length, index = case
    used = P.stage_prefix(net, length, index)
    assert used.prefixlen == length
    assert used.subnet_of(net)
    assert P.stage_prefix(str(net), length, index) == used  # deterministic


@settings(max_examples=200)
@given(announced_and_stage())
def test_random_answers_lie_inside_the_stage_prefix(case):
    net, length, index = case
    used = P.stage_prefix(net, length, index)
    sel = P.AddressSelector(used, "random")
    for dummy in range(20):
        assert ipaddress.ip_address(sel.pick()) in used


def test_random_addresses_of_a_24_are_uniform():
    """Chi-square over 256 cells; a biased generator fails it."""
    sel = P.AddressSelector(ipaddress.ip_network("198.18.16.0/24"), "random")
    draws = 256 * 200
    counts = [0] * 256
    for dummy in range(draws):
        counts[sel.pick()[3]] += 1
    assert _chi_square(counts, draws) < _CRITICAL_255_DOF


def test_chi_square_rejects_a_biased_generator():
    """The same check fails for a generator that favours the low half slightly."""
    import random
    rng = random.Random(7)
    draws = 256 * 200
    counts = [0] * 256
    for dummy in range(draws):
        value = rng.randrange(256)
        if value >= 128 and rng.random() < 0.1:
            value -= 128
        counts[value] += 1
    assert _chi_square(counts, draws) > _CRITICAL_255_DOF


# chi-square critical value for 255 degrees of freedom at p = 0.001
_CRITICAL_255_DOF = 330.5


def _chi_square(counts, draws):
    expected = draws / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


@given(st.one_of(v4_announced, v6_announced).filter(lambda n: n.num_addresses >= 2),
       st.data())
def test_per_pop_addresses_are_distinct(net, data):
    pops = data.draw(st.integers(1, min(net.num_addresses, 64)))
    addrs = [P.AddressSelector(net, "per_pop", 0, i).pick() for i in range(pops)]
    assert len(set(addrs)) == pops
    assert all(ipaddress.ip_address(a) in net for a in addrs)
    assert [str(P.pop_address(net, i)) for i in range(pops)] == [str(ipaddress.ip_address(a)) for a in addrs]


names = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}\.example", fullmatch=True), max_size=80)


@given(names, st.integers(1, 16))
def test_partition_slices_are_disjoint_and_cover(services, k):
    slices = P.partition_slices(services, k)
    assert len(slices) == k
    flat = [s for sl in slices for s in sl]
    assert len(flat) == len(set(flat))
    assert set(flat) == {P.normalise_name(s) for s in services}
    sizes = [len(sl) for sl in slices]
    assert max(sizes) - min(sizes) <= 1


@given(names.filter(lambda s: len(set(s)) >= 1), st.integers(1, 8))
def test_partition_answers_follow_slices(services, k):
    slices = P.partition_slices(services, k)
    sel = P.AddressSelector(ipaddress.ip_network("198.18.32.0/24"), "partition", 0, None, slices)
    for i, sl in enumerate(slices):
        for name in sl:
            assert sel.pick(name)[3] == i
    assert sel.pick("not-listed.example.")[3] == k


def test_stage_prefix_rejects_out_of_range():
    with pytest.raises(ValueError, match="between /20 and /32"):
        P.stage_prefix("198.18.16.0/20", 16)
    with pytest.raises(ValueError, match="outside 0..15"):
        P.stage_prefix("198.18.16.0/20", 24, 16)


@given(st.one_of(v4_announced, v6_announced), st.data())
def test_address_index_inverts_nth_address(net, data):
    n = data.draw(st.integers(0, net.num_addresses - 1))
    assert P.address_index(net, P.nth_address(net, n)) == n


@pytest.mark.parametrize("prefix, address, message", [
    ("198.18.48.0/24", "198.18.49.1", "198.18.49.1 is outside 198.18.48.0/24"),
    ("198.18.48.0/24", "2001:db8::1", "2001:db8::1 is outside 198.18.48.0/24"),
    ("198.18.48.0/24", "svc1.example.edu", "'svc1.example.edu' is not an IP address"),
])
def test_address_index_rejects_foreign_addresses(prefix, address, message):
    with pytest.raises(ValueError, match=message):
        P.address_index(prefix, address)
