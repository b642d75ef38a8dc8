#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: route_leak_check
short_description: Detect route leaks from per-PoP per-address hit counters (per_pop strategy)
version_added: 0.1.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - With the C(per_pop) strategy every PoP answers DNS with its own address inside the shared
    anycast prefix, so request traffic at a PoP should arrive on that PoP's address (paper §6).
  - Given every PoP's per-address hit counters (from M(agility.addressing.address_hits)) and
    every PoP's own addresses, flags traffic arriving at a PoP on another PoP's address beyond
    a threshold, naming the PoP where it arrived, the PoP whose address it is, and the address.
  - With O(baseline) (the counters read one detection interval earlier) only the traffic of
    the interval counts; otherwise the cumulative counters are judged.
  - "A pure computation over its inputs; run it once, on the controller
    (C(delegate_to: localhost), C(run_once: true)). It never changes anything."
extends_documentation_fragment:
  - agility.addressing.attributes
attributes:
  check_mode:
    support: full
    details: Computes the same result in check mode.
  diff_mode:
    support: none
options:
  counters:
    description: PoP name -> {address -> hits}, as M(agility.addressing.address_hits) returns in C(addresses).
    type: dict
    required: true
  baseline:
    description: The same counters read one detection interval earlier; omit to judge cumulative counts.
    type: dict
    default: {}
  own_addresses:
    description: PoP name -> list of the addresses that PoP hands out (its C(per_pop) address, per family).
    type: dict
    required: true
  threshold:
    description: Share (0..1) of a PoP's hits on fleet addresses that another PoP's address may carry before it is a leak.
    type: float
    default: 0.05
  min_hits:
    description: Fewest hits on a foreign address that can be a leak (ignores stray packets).
    type: int
    default: 10
  fail_on_leak:
    description: Fail the task when a leak is found (the message names the PoPs and addresses).
    type: bool
    default: false
notes:
  - "Why a module and not a filter: the check has a documented, structured result (leaks,
    per-PoP shares, unowned addresses) and an optional failure naming the leak; modules give
    both with argument validation and C(RETURN) docs, and are unit-tested with the same harness
    as the other modules."
  - Some foreign traffic is normal (resolvers far from their clients, paper §6 "Measurement
    Opportunities"); tune O(threshold) to the fleet's baseline.
"""

EXAMPLES = r"""
- name: Judge the last interval's traffic
  agility.addressing.route_leak_check:
    counters: "{{ dict(groups['pops'] | zip(groups['pops'] | map('extract', hostvars, ['hits_now', 'addresses']))) }}"
    baseline: "{{ dict(groups['pops'] | zip(groups['pops'] | map('extract', hostvars, ['hits_before', 'addresses']))) }}"
    own_addresses: {pop1: [198.18.16.0], pop2: [198.18.16.1]}
    threshold: 0.05
  delegate_to: localhost
  run_once: true
  register: leak_check
"""

RETURN = r"""
leaked:
  description: True when at least one leak was found.
  returned: always
  type: bool
leaks:
  description: One entry per (PoP, foreign address) beyond the threshold, busiest first.
  returned: always
  type: list
  elements: dict
  sample: [{"at": "pop2", "owner": "pop1", "address": "198.18.16.0", "hits": 480, "share": 0.92}]
messages:
  description: One sentence per leak, naming the PoPs and the address.
  returned: always
  type: list
  elements: str
affected_owners:
  description: PoPs whose address leaked (their traffic is being misdirected).
  returned: always
  type: list
  elements: str
per_pop:
  description: Per PoP, own hits, foreign hits, fleet-address hits and the foreign share.
  returned: always
  type: dict
unowned:
  description: Hits on addresses no PoP hands out (not leaks; other policies or scans).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agility.addressing.plugins.module_utils import load_stats


def _hits(value):
    if not value:
        return {}
    return dict((str(k), int(v)) for k, v in value.items())


def main():
    module = AnsibleModule(
        argument_spec=dict(
            counters=dict(type="dict", required=True),
            baseline=dict(type="dict", default={}),
            own_addresses=dict(type="dict", required=True),
            threshold=dict(type="float", default=0.05),
            min_hits=dict(type="int", default=10),
            fail_on_leak=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not 0 <= p["threshold"] < 1:
        module.fail_json(msg="threshold must be in [0, 1), got %s" % p["threshold"])
    try:
        counters = {}
        for pop, value in p["counters"].items():
            now = _hits(value)
            counters[pop] = load_stats.delta(now, _hits(p["baseline"].get(pop))) if p["baseline"] else now
        own = {}
        for pop, addrs in p["own_addresses"].items():
            own[pop] = [addrs] if isinstance(addrs, str) else list(addrs or [])
        unknown = sorted(set(counters) - set(own))
        if unknown:
            module.fail_json(msg="no own_addresses for PoP(s) %s" % ", ".join(unknown))
        found = load_stats.detect_leaks(counters, own, p["threshold"], p["min_hits"])
    except (ValueError, TypeError, AttributeError) as exc:
        module.fail_json(msg="bad counters or addresses: %s" % exc)
    messages = [load_stats.leak_message(x) for x in found["leaks"]]
    result = dict(changed=False, leaked=bool(found["leaks"]), leaks=found["leaks"], messages=messages,
                  affected_owners=sorted(set(x["owner"] for x in found["leaks"])),
                  per_pop=found["per_pop"], unowned=found["unowned"])
    if result["leaked"] and p["fail_on_leak"]:
        module.fail_json(msg="; ".join(messages), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
