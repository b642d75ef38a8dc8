# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The strict_inputs preflight: one test per documented example, and the known names agree with the sources.

Each EXAMPLES block of plugins/modules/strict_inputs.py is a task, the host's variables
(``# vars:``) and the error it fails with (``# =>``), or ``ok``. The examples run through the
real action plugin with a real templar.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:
    from ansible.template import trust_as_template  # ansible-core 2.19+: only trusted text is a template
except ImportError:
    def trust_as_template(value):
        return value

from ansible_collections.agility.addressing.plugins.action.strict_inputs import ActionModule
from ansible_collections.agility.addressing.plugins.modules import strict_inputs as module_doc
from ansible_collections.agility.addressing.plugins.plugin_utils.strict_inputs import (
    COLLECTION_ROOT, load_known, suggest, type_problem, unknown_problems,
)


class _Task(object):
    async_val = 0
    check_mode = False
    diff = False
    action = "agility.addressing.strict_inputs"

    def __init__(self, args):
        self.args = args


class _Connection(object):
    """The plugin never uses the connection; ActionBase.run only looks at its shell's tmpdir."""

    class _shell(object):
        tmpdir = "unused"


def run_action(args, host_vars, host="pop1"):
    task_vars = dict(host_vars, inventory_hostname=host)
    templar = Templar(loader=DataLoader(), variables=task_vars)
    action = ActionModule(_Task(args or {}), _Connection(), None, DataLoader(), templar, None)
    return action.run(task_vars=task_vars)


def _examples():
    cases = []
    for block in module_doc.EXAMPLES.strip().split("\n\n"):
        comments = [line.strip()[1:].strip() for line in block.splitlines() if line.strip().startswith("#")]
        host_vars = json.loads([c for c in comments if c.startswith("vars:")][0][len("vars:"):])
        at = [i for i, c in enumerate(comments) if c.startswith("=>")][0]
        expected = " ".join([comments[at][2:].strip()] + comments[at + 1:])
        task, = yaml.safe_load(block)
        cases.append(pytest.param(task["agility.addressing.strict_inputs"], host_vars, expected,
                                  id=comments[0][:60]))
    return cases


@pytest.mark.parametrize("args, host_vars, expected", _examples())
def test_documented_example(args, host_vars, expected):
    result = run_action(args, host_vars)
    if expected == "ok":
        assert not result.get("failed"), result
    else:
        assert result.get("failed"), result
        assert result["msg"] == expected


def test_examples_cover_every_kind_of_problem():
    expected = " ".join(str(p.values[2]) for p in _examples())
    for kind in ("did you mean", "must be", "is empty", "ok"):
        assert kind in expected


def test_lab_inventory_passes():
    inventory = os.path.join(COLLECTION_ROOT, "inventories", "lab", "group_vars", "pops", "addressing.yml")
    with open(inventory) as handle:
        host_vars = yaml.safe_load(handle)
    result = run_action({}, dict(host_vars, addressing_pop_index=0))
    assert not result.get("failed"), result
    assert "addressing_pools" in result["checked"]


def test_template_values_are_checked_as_rendered():
    # values from inventory files are trusted templates
    result = run_action({}, {"addressing_bisect_k": trust_as_template("{{ 2 + 2 }}"),
                             "addressing_pop_index": trust_as_template("{{ [1] }}")})
    assert result["failed"]
    assert result["problems"] == ["addressing_pop_index must be an integer, got [1]"]


def test_unknown_without_a_close_name_points_at_the_lists():
    problems = unknown_problems(["addressing_xyzzy", "other_var"], load_known())
    assert problems == ["addressing_xyzzy is not a variable of agility.addressing "
                        "(known ones: meta/variables.yml and roles/*/meta/argument_specs.yml)"]


def test_users_names_are_suggested_before_internal_ones():
    known = load_known()
    assert suggest("addressing_polices", known) == "addressing_policies"
    assert suggest("addressing_transitio", known) == "addressing_transition"


@pytest.mark.parametrize("value, kind, ok", [
    (1, "int", True), ("1", "int", True), (" -3 ", "int", True), (True, "int", False), ("1.5", "int", False),
    ("0.5", "float", True), (2, "float", True), ("x", "float", False),
    ("yes", "bool", True), (False, "bool", True), ("maybe", "bool", False),
    ([], "list", True), ("a,b", "list", False), ({}, "dict", True), ([], "dict", False),
    ("pop1", "str", True), (["pop1"], "str", False),
])
def test_types(value, kind, ok):
    assert (type_problem("addressing_x", value, kind) is None) == ok


def _names_in_sources(tops=("playbooks", "roles", os.path.join("extensions", "molecule")), suffixes=(".yml", ".j2")):
    """Every addressing_* name the playbooks, roles and Molecule scenarios mention (roles' own names aside)."""
    roles = set(os.listdir(os.path.join(COLLECTION_ROOT, "roles")))
    names = set()
    for top in tops:
        for folder, dummy, files in os.walk(os.path.join(COLLECTION_ROOT, top)):
            for fname in files:
                if fname.endswith(suffixes):
                    with open(os.path.join(folder, fname)) as handle:
                        names.update(re.findall(r"(?<![\w.])addressing_[a-z0-9_]+", handle.read()))
    return names - roles


def test_every_name_the_sources_use_is_known():
    """A new variable in a playbook or role must be added to meta/variables.yml (or an argument_spec)."""
    known = load_known()
    assert sorted(n for n in _names_in_sources() if n not in known) == []


def test_every_known_name_is_used():
    known = load_known()
    listed = set(known.inputs) | set(known.internal)
    # the action plugins read some themselves: addressing_allow_empty, and policy_files every
    # input of a PoP's policy document (plugin_utils/fleet_policies.py)
    used = _names_in_sources() | _names_in_sources(
        [os.path.join("plugins", "action"), os.path.join("plugins", "plugin_utils")], (".py",))
    assert sorted(listed - used) == []
