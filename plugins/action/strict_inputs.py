# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight of every playbook and role: refuse addressing_* variables nothing reads.

Runs on the controller only (no connection to the host). The known names and the
checks live in plugin_utils/strict_inputs.py; this plugin hands them the host's variables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.agility.addressing.plugins.plugin_utils.strict_inputs import (
    PREFIX, describe, empty_problems, load_known, type_problem, unknown_problems,
)

ARGUMENT_SPEC = {
    "not_empty": {
        "type": "list", "elements": "dict", "default": [],
        "options": {
            "name": {"type": "str", "required": True},
            "value": {"type": "raw"},
            "removes": {"type": "str", "required": True},
        },
    },
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        known = load_known()
        names = [n for n in task_vars if n.startswith(PREFIX)]
        problems = unknown_problems(names, known)
        for name in sorted(set(names) & set(known.inputs)):
            kind = (known.inputs[name] or {}).get("type")
            if kind:
                problem = type_problem(name, self._value(task_vars[name]), kind)
                if problem:
                    problems.append(problem)
        allow = self._value(task_vars.get("addressing_allow_empty", False))
        try:
            allow = boolean(allow, strict=False)
        except TypeError:
            allow = False
        problems.extend(empty_problems(args["not_empty"], allow))
        host = task_vars.get("inventory_hostname", "?")
        result["changed"] = False
        if problems:
            result["failed"] = True
            result["msg"] = describe(host, problems)
            result["problems"] = problems
        else:
            result["checked"] = sorted(names)
            result["msg"] = "host %s: %d addressing variables, all known" % (host, len(names))
        return result

    def _value(self, value):
        """The value as the playbook would see it; a template that fails here fails where it is used."""
        try:
            return self._templar.template(value)
        except AnsibleError:
            return None
