# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""load_stats: Gini, ratios, leak detection, bisection bookkeeping."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from hypothesis import given, strategies as st

from ansible_collections.agility.addressing.plugins.module_utils import load_stats as L


def test_gini_even_is_zero_and_concentrated_near_one():
    assert L.gini([5, 5, 5, 5]) == 0.0
    assert abs(L.gini([0] * 99 + [100]) - 0.99) < 1e-9
    assert L.gini([]) == 0.0 and L.gini([0, 0]) == 0.0


@given(st.lists(st.integers(min_value=0, max_value=10 ** 6), min_size=1, max_size=200))
def test_gini_bounds_and_scale_invariance(xs):
    g = L.gini(xs)
    assert -1e-9 <= g < 1.0
    if sum(xs):
        assert abs(L.gini([3 * x for x in xs]) - g) < 1e-9


def test_summary_counts_idle_expected_addresses():
    s = L.summary({"198.18.16.1": 10, "198.18.16.0": 40}, expected=["198.18.16.0", "198.18.16.1", "198.18.16.2"])
    assert s["series"] == [40, 10, 0]
    assert s["order"] == ["198.18.16.0", "198.18.16.1", "198.18.16.2"]
    assert s["idle"] == 1 and s["max_min_ratio"] is None
    assert s["max_min_ratio_nonzero"] == 4.0
    assert abs(s["orders_of_magnitude"] - math.log10(4)) < 1e-12
    assert "inf (1 idle)" in L.format_summary("t", s)


def test_delta_handles_counter_reset():
    assert L.delta({"a": 15, "b": 3}, {"a": 10, "b": 7}) == {"a": 5, "b": 3}


OWN = {"pop1": ["198.18.16.0", "2001:db8:100::"], "pop2": ["198.18.16.1", "2001:db8:100::1"]}


def test_no_leak_when_each_pop_sees_its_own_address():
    r = L.detect_leaks({"pop1": {"198.18.16.0": 500, "198.18.16.1": 3},
                        "pop2": {"198.18.16.1": 400}}, OWN, threshold=0.05, min_hits=10)
    assert r["leaks"] == []
    assert r["per_pop"]["pop1"]["foreign_hits"] == 3


def test_leak_names_pops_and_address():
    r = L.detect_leaks({"pop1": {"198.18.16.0": 10},
                        "pop2": {"198.18.16.1": 100, "198.18.16.0": 300, "198.18.99.9": 5}}, OWN)
    assert r["leaks"] == [{"at": "pop2", "owner": "pop1", "address": "198.18.16.0", "hits": 300, "share": 0.75}]
    assert r["unowned"] == [{"at": "pop2", "address": "198.18.99.9", "hits": 5}]
    msg = L.leak_message(r["leaks"][0])
    assert "pop2" in msg and "pop1" in msg and "198.18.16.0" in msg


def test_ipv6_addresses_are_canonicalised():
    r = L.detect_leaks({"pop1": {"2001:DB8:100:0::1": 50}, "pop2": {}}, OWN)
    assert r["leaks"][0]["address"] == "2001:db8:100::1" and r["leaks"][0]["owner"] == "pop2"


def test_min_hits_and_threshold_suppress_noise():
    counters = {"pop1": {"198.18.16.0": 1000, "198.18.16.1": 9}}
    assert L.detect_leaks(counters, OWN, threshold=0.0, min_hits=10)["leaks"] == []
    counters = {"pop1": {"198.18.16.0": 1000, "198.18.16.1": 40}}
    assert L.detect_leaks(counters, OWN, threshold=0.05, min_hits=10)["leaks"] == []
    assert len(L.detect_leaks(counters, OWN, threshold=0.03, min_hits=10)["leaks"]) == 1


def test_split_matches_partition_slices_filter():
    from ansible_collections.agility.addressing.plugins.module_utils.policy import partition_slices
    names = ["S%02d.Example.com" % i for i in range(67)]
    assert L.split(names, 4) == partition_slices(names, 4)
    assert L.split(["a", "b"], 4) == [["a."], ["b."]]


def test_followed_slice_verdicts():
    addrs = ["198.18.16.1", "198.18.16.2", "198.18.16.3"]
    assert L.followed_slice({"198.18.16.2": 900, "198.18.16.1": 30}, addrs, "198.18.16.0") == ("slice", 1)
    assert L.followed_slice({"198.18.16.0": 900, "198.18.16.1": 30}, addrs, "198.18.16.0") == ("l3l4", None)
    assert L.followed_slice({"198.18.16.0": 5}, addrs, "198.18.16.0") == ("none", None)
    assert L.followed_slice({"198.18.16.1": 300, "198.18.16.2": 300}, addrs, "198.18.16.0") == ("unclear", None)
    # the old address may be one of the slice addresses (re-used): then it is a slice
    assert L.followed_slice({"198.18.16.1": 500}, addrs, "198.18.16.1") == ("slice", 0)


@given(n=st.integers(min_value=2, max_value=300), k=st.integers(min_value=2, max_value=16),
       target=st.integers(min_value=0, max_value=10 ** 6))
def test_simulated_bisection_isolates_in_ceil_log_k_n_rounds(n, k, target):
    services = ["svc%03d.example." % i for i in range(n)]
    attacked = services[target % n]
    current = list(services)
    rounds = 0
    while True:
        slices = L.split(current, k)
        addrs = ["198.18.16.%d" % (i + 1) for i in range(len(slices))]
        hits = dict((addrs[i], 1000 if attacked in s else 2) for i, s in enumerate(slices))
        r = L.bisect_round(current, k, hits, addrs, "198.18.16.0")
        rounds += 1
        assert r["verdict"] == "slice"
        current = r["next_services"]
        if r["isolated"]:
            break
    assert current == [attacked]
    # ceil(log_k n) rounds at most (fewer when the attacked service lands in a short slice)
    assert L.expected_rounds(n, k) == int(math.ceil(math.log(n) / math.log(k) - 1e-9))
    assert 1 <= rounds <= L.expected_rounds(n, k)


def test_bisection_says_l3l4_when_attack_stays():
    services = ["svc%d.example." % i for i in range(64)]
    r = L.bisect_round(services, 4, {"198.18.16.0": 5000, "198.18.16.3": 4}, ["198.18.16.%d" % i for i in range(1, 5)],
                       "198.18.16.0")
    assert r["verdict"] == "L3/L4" and r["next_services"] == sorted(services) and not r["isolated"]
