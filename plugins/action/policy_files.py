# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render every PoP's policy file on the controller in one task (run once for the play).

Reads each host's addressing variables from hostvars, builds all documents in-process, and
writes only the files whose bytes change. Nothing is written unless every host renders.
The logic lives in plugin_utils/fleet_policies.py; this plugin gathers inputs and reports.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.plugins.action import ActionBase

from ansible_collections.agility.addressing.plugins.plugin_utils.fleet_policies import (
    INPUTS, changes, check_host_name, host_inputs, host_variables, path_of, render, write_all,
)

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str"},
    "mode": {"type": "str", "default": "0640"},
}
# what host_inputs reads
NAMES = [name for _arg, name in INPUTS] + ["addressing_pop_name"]
# errors printed in full before "... and N more"
MAX_ERRORS = 20


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        try:
            mode = int(args["mode"], 8)
        except ValueError:
            return dict(result, failed=True, msg="mode must be octal, for example 0640: got %r" % args["mode"])
        hosts = args["hosts"]
        if hosts is None:
            hosts = task_vars.get("ansible_play_hosts", [])
        dest = args["dest"]

        errors = [e for e in (check_host_name(h) for h in hosts) if e]
        inputs = {}
        memo, keepalive = {}, []
        for host in hosts if not errors else []:
            variables = host_variables(task_vars["hostvars"], host, NAMES, memo, keepalive)
            if isinstance(variables, str):
                errors.append(variables)
            else:
                inputs[host] = host_inputs(host, variables)
        texts = {}
        if not errors:
            texts, errors = render(inputs)
        if errors:
            shown = errors[:MAX_ERRORS]
            if len(errors) > MAX_ERRORS:
                shown.append("... and %d more hosts" % (len(errors) - MAX_ERRORS))
            return dict(result, failed=True, msg="\n".join(shown), errors=errors, changed=False)

        if os.path.exists(dest) and not os.path.isdir(dest):
            return dict(result, failed=True, msg="dest %s exists and is not a directory" % dest)
        changed = changes(dest, texts) if os.path.isdir(dest) else [(h, None, texts[h]) for h in sorted(texts)]
        result.update(changed=bool(changed), dest=dest, hosts=len(texts),
                      changed_hosts=[h for h, _b, _a in changed])
        if self._task.diff:
            result["diff"] = [dict(before=before or "", after=after, after_header=path_of(dest, host),
                                   before_header=path_of(dest, host) if before is not None
                                   else "%s (absent)" % path_of(dest, host))
                              for host, before, after in changed]
        if changed and not self._task.check_mode:
            try:
                if not os.path.isdir(dest):
                    os.makedirs(dest, 0o750)
                write_all(dest, changed, mode)
            except (IOError, OSError) as exc:
                return dict(result, failed=True, msg="cannot write in %s: %s" % (dest, exc))
        return result
