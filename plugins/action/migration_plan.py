# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What migrate_pool would do across the fleet, computed on the controller (run once).

Reads each host's addressing variables (and the stages a migration recorded on it, when its
local facts were gathered) and hands them to plugin_utils/migration_plan.py. Changes nothing on
any host; with ``dest`` it writes the plan as JSON on the controller, in check mode too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.agility.addressing.plugins.plugin_utils.fleet_policies import (
    INPUTS, host_inputs, host_variables,
)
from ansible_collections.agility.addressing.plugins.plugin_utils.migration_plan import (
    DEFAULT_APPLY_SECONDS, DEFAULT_GATE_SECONDS, PlanError, lines, plan,
)

ARGUMENT_SPEC = {
    "pool": {"type": "str"},
    "stage": {"type": "raw"},
    "policy": {"type": "str"},
    "to_pool": {"type": "str"},
    "serial": {"type": "raw"},
    "ttl_margin": {"type": "int", "default": 5},
    "hosts": {"type": "list", "elements": "str"},
    "apply_seconds": {"type": "int", "default": DEFAULT_APPLY_SECONDS},
    "gate_seconds": {"type": "int", "default": DEFAULT_GATE_SECONDS},
    "dest": {"type": "path"},
}
NAMES = [name for _arg, name in INPUTS if name != "addressing_stages"] + [
    "addressing_pop_name", "addressing_tcp_ports", "addressing_udp_ports", "ansible_local"]


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
        hosts = args["hosts"] if args["hosts"] is not None else task_vars.get("ansible_play_hosts", [])
        migration = {k: args[k] for k in ("pool", "stage", "policy", "to_pool") if args[k] is not None}
        if args["ttl_margin"] < 0 or args["apply_seconds"] < 0 or args["gate_seconds"] < 0:
            return dict(result, failed=True, msg="ttl_margin, apply_seconds and gate_seconds must be >= 0")

        inputs, errors = {}, []
        memo, keepalive = {}, []
        for host in hosts:
            variables = host_variables(task_vars["hostvars"], host, NAMES, memo, keepalive)
            if isinstance(variables, str):
                errors.append(variables)
                continue
            if "addressing_pools" not in variables:
                errors.append("host %s: addressing_pools is not set" % host)
                continue
            recorded = (variables.get("ansible_local") or {}).get("agility") or {}
            build = host_inputs(host, variables)
            inputs[host] = {"build": build, "stages": recorded.get("stages") or {},
                            "pool_overrides": recorded.get("pool_overrides") or {},
                            "tcp_ports": variables.get("addressing_tcp_ports"),
                            "udp_ports": variables.get("addressing_udp_ports")}
        if errors:
            return dict(result, failed=True, msg="\n".join(errors), errors=errors)
        try:
            planned = plan(inputs, hosts, migration, serial=args["serial"], ttl_margin=args["ttl_margin"],
                           apply_seconds=args["apply_seconds"], gate_seconds=args["gate_seconds"])
        except PlanError as exc:
            return dict(result, failed=True, msg="cannot plan the migration: %s" % exc)
        result.update(planned)
        result["lines"] = lines(planned)
        if args["dest"]:
            try:
                self._write(args["dest"], planned)
            except (IOError, OSError) as exc:
                return dict(result, failed=True, msg="cannot write the plan to %s: %s" % (args["dest"], exc))
            result["dest"] = args["dest"]
        if planned["refused"]:
            result["failed"] = True
            result["msg"] = "the migration would be refused on %d PoP(s):\n%s" % (
                len(planned["refused"]), "\n".join(planned["refused"]))
        else:
            result["msg"] = result["lines"][0]
        return result

    @staticmethod
    def _write(dest, planned):
        directory = os.path.dirname(dest) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o750)
        fd, tmp = tempfile.mkstemp(prefix=".plan-", suffix=".json.tmp", dir=directory)
        with os.fdopen(fd, "w") as handle:
            json.dump(planned, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o640)
        os.rename(tmp, dest)
