# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process and get its result, as community.general's tests do.

conftest.py makes exit_json/fail_json raise instead of exiting; run_module passes the
arguments the way ansible-core 2.19 expects them and returns the result dictionary
(with ``failed: True`` when the module failed).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


def exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise ExitJson(kwargs)


def fail_json(self, **kwargs):
    kwargs["failed"] = True
    raise FailJson(kwargs)


def patch_exits(monkeypatch):
    monkeypatch.setattr(AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(AnsibleModule, "fail_json", fail_json)


def run_module(main, args, check=False, diff=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    if diff:
        args = dict(args, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises((ExitJson, FailJson)) as exc:
            main()
    return exc.value.args[0]
