#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: strict_inputs
short_description: Refuse addressing variables nothing reads, and plans that empty a PoP
version_added: 0.1.0
author: Agility Addressing Maintainers (@agility-addressing)
description:
  - The preflight of every playbook and role of agility.addressing. Fails when the host has an
    C(addressing_*) variable that no part of the collection reads, naming the host and the variable
    and suggesting the closest known name (C(did you mean ...)), so a typo such as
    C(addressing_polices) fails instead of rendering a policy file with no policies.
  - The known names have one home, read from the installed collection itself, the options of the
    roles (C(roles/*/meta/argument_specs.yml)) plus C(meta/variables.yml) (inventory and command-line
    inputs, with their types, and the names the playbooks set themselves).
  - Checks the type of the inputs that have one; text from C(-e) such as C("1") or C("true") is
    accepted where a number or a boolean is expected.
  - Refuses a plan that would remove every route, binding or policy of a PoP (O(not_empty)) unless the
    variable C(addressing_allow_empty) is true.
  - Runs on the controller only; it never connects to the host.
options:
  hosts:
    description:
      - Check these hosts' variables in one run instead of the host the task runs for, for example
        C("{{ ansible_play_hosts }}") with C(run_once=true) on a large fleet. It reads each host's
        inventory and command-line variables, without a task per host.
      - Play and task variables are not among them. Cannot be combined with O(not_empty).
    type: list
    elements: str
    version_added: 0.2.0
  not_empty:
    description:
      - Values that must not be empty unless C(addressing_allow_empty) is true.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The variable named in the error.
        type: str
        required: true
      value:
        description: Its value.
        type: raw
      removes:
        description: What an empty value removes, in the error (C(route), C(binding), C(policy)).
        type: str
        required: true
extends_documentation_fragment:
  - agility.addressing.attributes
  - agility.addressing.attributes.platform
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Each example below is a unit test (tests/unit/plugins/action/test_strict_inputs.py) - C(vars) are
    the host's variables, C(=>) the error (continued on the comment lines after it), or C(ok).
"""

EXAMPLES = r"""
# A typo in an inventory variable: the policies would silently be none
- name: Check the addressing variables
  agility.addressing.strict_inputs:
  # vars: {"addressing_pools": {}, "addressing_polices": []}
  # => host pop1: addressing_polices is not a variable of agility.addressing (did you mean addressing_policies?)

# Zones and stages: renders 0 zones, or ignores the stage, without the check
- name: Check the addressing variables
  agility.addressing.strict_inputs:
  # vars: {"addressing_zone": {}, "addressing_stage": {"anycast": "narrow"}}
  # => host pop1: addressing_stage is not a variable of agility.addressing (did you mean addressing_stages?);
  #    addressing_zone is not a variable of agility.addressing (did you mean addressing_zones?)

# A typo in a role variable: the role would plan to remove every managed route
- name: Check the addressing variables
  agility.addressing.strict_inputs:
  # vars: {"addressing_routes_prefixs": ["198.18.16.0/20"]}
  # => host pop1: addressing_routes_prefixs is not a variable of agility.addressing (did you mean addressing_routes_prefixes?)

# A number given with -e arrives as text, and is accepted
- name: Check the addressing variables
  agility.addressing.strict_inputs:
  # vars: {"addressing_pop_index": "1", "addressing_rollback": "true"}
  # => ok

# A value of the wrong type names the variable and the host
- name: Check the addressing variables
  agility.addressing.strict_inputs:
  # vars: {"addressing_pop_index": "one"}
  # => host pop1: addressing_pop_index must be an integer, got 'one'

# A role refuses to remove every route of a PoP
- name: Check the addressing variables
  agility.addressing.strict_inputs:
    not_empty:
      - name: addressing_routes_prefixes
        value: []
        removes: route
  # vars: {}
  # => host pop1: addressing_routes_prefixes is empty: applying it removes every route of the PoP;
  #    set addressing_allow_empty: true if that is meant

# ... unless told to
- name: Check the addressing variables
  agility.addressing.strict_inputs:
    not_empty:
      - name: addressing_routes_prefixes
        value: []
        removes: route
  # vars: {"addressing_allow_empty": "yes"}
  # => ok
"""

RETURN = r"""
checked:
  description: The host's addressing variables that were checked.
  returned: success
  type: list
  elements: str
  sample: [addressing_pools, addressing_policies]
problems:
  description: One message per problem.
  returned: failed
  type: list
  elements: str
  sample: ["addressing_polices is not a variable of agility.addressing (did you mean addressing_policies?)"]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            hosts=dict(type="list", elements="str"),
            not_empty=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                value=dict(type="raw"),
                removes=dict(type="str", required=True),
            )),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="agility.addressing.strict_inputs runs on the controller (action plugin); "
                         "this module file only documents it")


if __name__ == "__main__":
    main()
