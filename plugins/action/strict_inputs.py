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
    "hosts": {"type": "list", "elements": "str"},
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
        result["changed"] = False
        known = load_known()
        if args["hosts"] is not None:
            if args["not_empty"]:
                return dict(result, failed=True, msg="not_empty checks the host the task runs for; "
                                                     "use it without hosts")
            return self._check_hosts(result, known, task_vars["hostvars"], args["hosts"])
        names = [n for n in task_vars if n.startswith(PREFIX)]
        problems = self._problems(known, names, lambda name: self._value(task_vars[name]))
        allow = self._value(task_vars.get("addressing_allow_empty", False))
        try:
            allow = boolean(allow, strict=False)
        except TypeError:
            allow = False
        problems.extend(empty_problems(args["not_empty"], allow))
        host = task_vars.get("inventory_hostname", "?")
        if problems:
            result["failed"] = True
            result["msg"] = describe(host, problems)
            result["problems"] = problems
        else:
            result["checked"] = sorted(names)
            result["msg"] = "host %s: %d addressing variables, all known" % (host, len(names))
        return result

    @staticmethod
    def _problems(known, names, value_of):
        problems = unknown_problems(names, known)
        for name in sorted(set(names) & set(known.inputs)):
            kind = (known.inputs[name] or {}).get("type")
            if kind:
                problem = type_problem(name, value_of(name), kind)
                if problem:
                    problems.append(problem)
        return problems

    def _check_hosts(self, result, known, hostvars, hosts):
        """Every listed host's inventory and command-line variables, in one run (run_once)."""
        messages = []
        for host in hosts:
            if host not in hostvars:
                messages.append("host %s: not in the inventory" % host)
                continue
            raw = hostvars.raw_get(host)
            names = [n for n in raw if n.startswith(PREFIX)]

            def value_of(name, raw=raw, host=host):
                # text may be a template, rendered with that host's variables
                if not isinstance(raw[name], str):
                    return raw[name]
                try:
                    return hostvars[host][name]
                except AnsibleError:
                    return None
            problems = self._problems(known, names, value_of)
            if problems:
                messages.append(describe(host, problems))
        if messages:
            return dict(result, failed=True, msg="\n".join(messages), problems=messages)
        return dict(result, msg="%d hosts: addressing variables all known" % len(hosts))

    def _value(self, value):
        """The value as the playbook would see it; a template that fails here fails where it is used.

        Only text can template into another type ("{{ 1 }}" is an integer); a mapping or a list
        stays one, and templating each PoP's copy of a large group_vars mapping costs ~80 ms.
        """
        if not isinstance(value, str):
            return value
        try:
            return self._templar.template(value)
        except AnsibleError:
            return None
