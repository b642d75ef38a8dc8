#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: policy_files
short_description: Render every PoP's policy file on the controller in one pass
version_added: 0.2.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - Builds the policy document of every host in O(hosts) from its inventory variables
    (C(addressing_pools), C(addressing_pop_index), C(addressing_policies), C(addressing_zones),
    C(addressing_default_policy), C(addressing_stages), C(addressing_pop_name)) and writes
    C(DEST/HOST.json) for each, with the same code and the same bytes as
    M(agility.addressing.policy_file) and the P(agility.addressing.pop_policy#filter) filter.
  - Run it once for the play (C(run_once=true)); it replaces a module run per PoP, which costs
    about half a second each.
  - Writes only the files whose content changes, each atomically. If any host fails to render,
    it writes nothing and names every failing host and inventory variable.
  - Files of hosts not rendered (no longer in the inventory, or outside O(hosts)) are left alone.
  - Runs on the controller only; it never connects to the hosts.
options:
  dest:
    description: Directory of the rendered files, created (mode 0750) if missing.
    type: path
    required: true
  hosts:
    description: The hosts to render. Default the play's active hosts (C(ansible_play_hosts)), so C(--limit) applies.
    type: list
    elements: str
  mode:
    description: Octal mode of the files written.
    type: str
    default: "0640"
extends_documentation_fragment:
  - agility.addressing.attributes
  - agility.addressing.attributes.platform
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One diff per changed file.
  platform:
    platforms: posix
seealso:
  - module: agility.addressing.policy_file
  - plugin: agility.addressing.pop_policy
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Render every PoP's policy file for review
  agility.addressing.policy_files:
    dest: "{{ inventory_dir }}/addressing-output/policies"
  run_once: true
"""

RETURN = r"""
dest:
  description: The directory rendered into.
  returned: success
  type: str
hosts:
  description: How many hosts were rendered.
  returned: success
  type: int
changed_hosts:
  description: The hosts whose file was (or, in check mode, would be) written.
  returned: success
  type: list
  elements: str
  sample: [pop1, pop2]
errors:
  description: One message per host that failed to render, naming the inventory variable.
  returned: failed
  type: list
  elements: str
  sample: ["host pop2: invalid addressing policy: addressing_policies[0](free).strategy: unknown strategy 'fastest'"]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            hosts=dict(type="list", elements="str"),
            mode=dict(type="str", default="0640"),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="agility.addressing.policy_files runs on the controller (action plugin); "
                         "this module file only documents it")


if __name__ == "__main__":
    main()
