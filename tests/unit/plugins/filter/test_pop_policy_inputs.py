# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pop_policy takes what users give on the command line, and its errors name inventory variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.agility.addressing.plugins.filter.addressing import pop_policy

POOLS = {"anycast": {"ipv4": {"announced": "198.18.16.0/20"}}}
PER_POP = [{"name": "watch", "pool": "anycast", "strategy": "per_pop", "offset": 200, "ttl": 10}]


@pytest.mark.parametrize("given", ["1", " 1 ", 1])
def test_pop_index_from_extra_vars_is_a_number(given):
    doc = pop_policy(POOLS, "pop2", given, policies=PER_POP, host="pop2")
    assert doc["pop"]["index"] == 1


def test_stage_index_as_text_is_a_number():
    pools = {"anycast": {"ipv4": {"announced": "198.18.16.0/20"}, "stage": "narrow", "stage_index": "3"}}
    doc = pop_policy(pools, "pop1", policies=[{"name": "free", "pool": "anycast", "ttl": 30}])
    assert doc["pools"]["anycast"]["ipv4"]["used"] == "198.18.19.0/24"


@pytest.mark.parametrize("pools, index, policies, message", [
    (POOLS, "one", PER_POP, "host pop1: invalid addressing policy: addressing_pop_index: "),
    (POOLS, None, PER_POP, "addressing_policies[0](watch).strategy: per_pop needs pop.index"),
    ({"anycast": {"ipv4": {"anounced": "198.18.16.0/20"}}}, 0, PER_POP,
     "addressing_pools.anycast.ipv4.anounced: unknown key (did you mean announced?) (allowed: announced, used)"),
    ({"anycast": {"ipv4": {"announced": "198.18.16.0/20"}, "stag": "narrow"}}, 0, PER_POP,
     "addressing_pools.anycast.stag: unknown key (did you mean stage?)"),
    ({"anycast": {"ipv4": {"announced": "198.18.16.0/20"}}}, 0, [dict(PER_POP[0], pool="nowhere")],
     "addressing_policies[0](watch).pool"),
], ids=["index-not-a-number", "per-pop-without-index", "anounced", "stag", "unknown-pool"])
def test_errors_name_the_inventory_variable_and_host(pools, index, policies, message):
    with pytest.raises(AnsibleFilterError) as err:
        pop_policy(pools, "pop1", index, policies=policies, host="pop1")
    text = str(err.value)
    assert text.startswith("host pop1: invalid addressing policy: ")
    assert message in text
    assert "got None" not in text
