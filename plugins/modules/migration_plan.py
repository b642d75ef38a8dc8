#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: migration_plan
short_description: What a migration would do across the fleet, batch by batch, without changing anything
version_added: 0.2.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - Plans what C(agility.addressing.migrate_pool) would do, like C(terraform plan). Batches follow
    O(serial) as Ansible splits them; per PoP it reports the used prefixes before and after, the routes and
    sk_lookup bindings added and removed, the policies moved, and the TTL wait before narrowing; per batch
    and overall, an estimate of the wall time (two applies, two gates and the wait per batch that changes).
  - Each host's current stages are the ones a migration recorded on it (local fact C(agility)) when its
    local facts were gathered, else the inventory's.
  - A PoP whose target document would be refused (for example a stage with too few addresses for a
    C(per_pop) policy) is named with the inventory variable, and the task fails after reporting the plan.
  - Changes nothing on any host. With O(dest) it writes the plan as JSON on the controller, in check mode
    too (it is a report, not a change).
  - Run it once for the play (C(run_once=true)); playbook C(agility.addressing.plan) does.
options:
  pool:
    description: The pool to move to O(stage). Give O(pool) and O(stage), or O(policy) and O(to_pool).
    type: str
  stage:
    description: The stage to move O(pool) to (a stage name, or a mapping of prefix lengths).
    type: raw
  policy:
    description: The policy to move to O(to_pool).
    type: str
  to_pool:
    description: The pool O(policy) moves to.
    type: str
  serial:
    description:
      - The batches, as C(serial) of C(agility.addressing.migrate_pool) takes them (a number, a
        percentage, or a list of them; the last repeats). Default C([1, "25%", "100%"]).
    type: raw
  ttl_margin:
    description: Seconds added to the longest TTL before narrowing.
    type: int
    default: 5
  hosts:
    description: The PoPs to plan for, in rollout order. Default the play's active hosts (C(ansible_play_hosts)).
    type: list
    elements: str
  apply_seconds:
    description: Assumed seconds of one apply step (routes, bindings, policy, reload), for the estimate.
    type: int
    default: 15
  gate_seconds:
    description: Assumed seconds of one health gate, for the estimate.
    type: int
    default: 30
  dest:
    description: Write the plan as JSON to this file on the controller.
    type: path
extends_documentation_fragment:
  - agility.addressing.attributes
  - agility.addressing.attributes.platform
attributes:
  check_mode:
    support: full
    details: It only plans; O(dest) is written in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: agility.addressing.policy_files
"""

EXAMPLES = r"""
- name: Plan moving pool anycast to its /24 stage
  agility.addressing.migration_plan:
    pool: anycast
    stage: narrow
    dest: "{{ inventory_dir }}/addressing-output/plan.json"
  run_once: true
  register: plan

- name: Show it
  ansible.builtin.debug:
    msg: "{{ plan.lines }}"
  run_once: true
"""

RETURN = r"""
lines:
  description: The plan as text, one line for the whole, one per batch and one per PoP.
  returned: success
  type: list
  elements: str
  sample:
    - "plan: move pool anycast to stage narrow; 3 PoPs in 2 batches (serial [1, '25%', '100%']); about 3 min 20 s"
    - "batch 1: pop1; TTL wait 10 s; about 1 min 40 s"
    - "  pop1: used 198.18.16.0/20, 2001:db8:100::/44 -> 198.18.16.0/24, 2001:db8:100::/64; routes +0 -0; bindings +6 -6"
batches:
  description: Per batch, its hosts, each PoP's part (C(used_before), C(used_after), C(routes_added),
    C(routes_removed), C(bindings_added), C(bindings_removed), C(policies_moved), C(ttl_wait)), the wait and the estimate.
  returned: success
  type: list
  elements: dict
refused:
  description: One message per PoP whose target would be refused.
  returned: always
  type: list
  elements: str
estimate_seconds:
  description: Estimated wall time of the whole migration.
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pool=dict(type="str"),
            stage=dict(type="raw"),
            policy=dict(type="str"),
            to_pool=dict(type="str"),
            serial=dict(type="raw"),
            ttl_margin=dict(type="int", default=5),
            hosts=dict(type="list", elements="str"),
            apply_seconds=dict(type="int", default=15),
            gate_seconds=dict(type="int", default=30),
            dest=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="agility.addressing.migration_plan runs on the controller (action plugin); "
                         "this module file only documents it")


if __name__ == "__main__":
    main()
