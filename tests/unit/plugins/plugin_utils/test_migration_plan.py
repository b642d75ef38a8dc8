# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration_plan's pure parts: Ansible's serial batches, one PoP's part, the whole plan, its text."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.agility.addressing.plugins.plugin_utils.migration_plan import (
    PlanError, batches, lines, plan, pop_plan,
)

POOLS = {"anycast": {"ipv4": {"announced": "198.18.16.0/20"}, "ipv6": {"announced": "2001:db8:100::/44"}},
         "dedicated": {"ipv4": {"announced": "198.18.48.0/20"}, "stage": "narrow"}}
POLICIES = [{"name": "free", "match": {"account_types": ["free"]}, "pool": "anycast", "ttl": 30},
            {"name": "watch", "match": {"account_types": ["enterprise"]}, "pool": "dedicated",
             "strategy": "per_pop", "offset": 200, "ttl": 10}]
TCP = {80: "http", 443: "https"}
UDP = {0: "udp"}


def inputs(hosts, stages=None, overrides=None):
    return {h: {"build": {"pools": POOLS, "pop": h, "index": i, "policies": POLICIES},
                "stages": stages or {}, "pool_overrides": overrides or {}, "tcp_ports": TCP, "udp_ports": UDP}
            for i, h in enumerate(hosts)}


@pytest.mark.parametrize("count, serial, sizes", [
    (3, [1, "25%", "100%"], [1, 1, 1]),      # 25% of 3 rounds down to 0, and a batch holds at least 1
    (10, [1, "25%", "100%"], [1, 2, 7]),
    (10, 3, [3, 3, 3, 1]),                   # one value repeats
    (10, ["50%"], [5, 5]),
    (4, [0], [4]),                           # 0 means all hosts, as in Ansible
    (5, [2, 1], [2, 1, 1, 1]),               # the last entry repeats
    (0, [1], []),
])
def test_batches_split_as_ansible_serial_does(count, serial, sizes):
    hosts = ["pop%d" % i for i in range(count)]
    got = batches(hosts, serial)
    assert [len(b) for b in got] == sizes and sum(got, []) == hosts


def test_bad_serial_is_refused():
    with pytest.raises(PlanError, match="neither a whole number nor a percentage"):
        batches(["a"], ["half"])


def test_pop_plan_narrowing():
    part = pop_plan("pop1", inputs(["pop1"])["pop1"], {"pool": "anycast", "stage": "narrow"}, 5)
    assert part["used_before"][:1] == ["198.18.16.0/20"] and "198.18.16.0/24" in part["used_after"]
    assert part["routes_added"] == [] and part["routes_removed"] == []   # announced prefixes stay
    # each family's prefix: 2 TCP ports and 1 UDP port; the dedicated /24 is bound throughout
    assert (part["bindings_added"], part["bindings_removed"], part["bindings_during_wait"]) == (6, 6, 15)
    assert part["ttl_wait"] == 30 + 5 and part["changes"] and part["policies_moved"] == []


def test_pop_plan_from_recorded_stage_back_to_wide():
    part = pop_plan("pop1", inputs(["pop1"], stages={"anycast": "single"})["pop1"],
                    {"pool": "anycast", "stage": "wide"}, 2)
    assert "198.18.16.0/32" in part["used_before"] and "198.18.16.0/20" in part["used_after"]


def test_moving_a_policy_changes_no_prefix_and_waits_for_nothing():
    part = pop_plan("pop1", inputs(["pop1"])["pop1"], {"policy": "free", "to_pool": "dedicated"}, 5)
    assert part["policies_moved"] == [{"policy": "free", "from": "anycast", "to": "dedicated"}]
    assert part["changes"] and part["ttl_wait"] == 0 and part["bindings_added"] == 0


def test_plan_estimates_and_names_refused_pops():
    hosts = ["pop%d" % i for i in range(4)]
    # single stage of the dedicated pool: one address, but per_pop needs offset 200 + PoP index
    result = plan(inputs(hosts), hosts, {"pool": "dedicated", "stage": "single"}, serial=[1, "100%"])
    assert [b["hosts"] for b in result["batches"]] == [["pop0"], ["pop1", "pop2", "pop3"]]
    assert len(result["refused"]) == 4
    assert result["refused"][0].startswith("host pop0: invalid addressing policy: ")
    assert "per_pop" in result["refused"][0]

    result = plan(inputs(hosts), hosts, {"pool": "anycast", "stage": "narrow"}, serial=[1, "100%"],
                  ttl_margin=5, apply_seconds=10, gate_seconds=20)
    assert result["refused"] == []
    assert [b["estimate_seconds"] for b in result["batches"]] == [2 * 30 + 35] * 2
    assert result["estimate_seconds"] == 190
    text = lines(result)
    assert text[0] == ("plan: move pool anycast to stage narrow; 4 PoPs in 2 batches (serial [1, '100%']); "
                       "about 3 min 10 s (apply 10 s and gate 20 s assumed)")
    assert text[1] == "batch 1: pop0; TTL wait 35 s; about 1 min 35 s"
    assert text[2].startswith("  pop0: used 198.18.16.0/20, 2001:db8:100::/44 -> 198.18.16.0/24, 2001:db8:100::/64; "
                              "routes +0 -0; bindings +6 -6")


@pytest.mark.parametrize("migration, needle", [
    ({"pool": "nope", "stage": "narrow"}, "no pool nope (pools: anycast, dedicated)"),
    ({"pool": "anycast"}, "say the stage"),
    ({"policy": "nope", "to_pool": "anycast"}, "no policy nope"),
    ({"policy": "free", "to_pool": "nope"}, "no pool nope to move policy free to"),
    ({}, "say what to migrate"),
])
def test_what_cannot_be_planned(migration, needle):
    with pytest.raises(PlanError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        plan(inputs(["pop1"]), ["pop1"], migration)
