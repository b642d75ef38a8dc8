# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A malformed inventory fails naming the host, the policy and the field.

Runs the real render playbook with ansible-playbook in check mode against a
copy of the lab inventory with one mistake each.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(ROOT, "playbooks", "render_policies.yml")
GROUP_VARS = os.path.join(ROOT, "inventories", "lab", "group_vars", "pops", "addressing.yml")


def _run(tmp_path, mutate):
    inv = tmp_path / "inv"
    shutil.copytree(os.path.join(ROOT, "inventories", "lab"), str(inv))
    data = yaml.safe_load(open(GROUP_VARS))
    host_vars = mutate(data) or {}
    with open(str(inv / "group_vars" / "pops" / "addressing.yml"), "w") as handle:
        yaml.safe_dump(data, handle)
    # host_vars/ holds no file in git, so a clean clone has no such directory.
    (inv / "host_vars").mkdir(exist_ok=True)
    for host, hv in host_vars.items():
        with open(str(inv / "host_vars" / ("%s.yml" % host)), "w") as handle:
            yaml.safe_dump(hv, handle)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".cache", "collections")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inv), PLAYBOOK,
         "--check", "-e", "addressing_render_dir=%s" % (tmp_path / "out")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        check=False, timeout=300)
    return proc.returncode, proc.stdout


def test_lab_inventory_renders(tmp_path):
    rc, out = _run(tmp_path, lambda data: None)
    assert rc == 0, out
    assert "failed=0" in out


def _overlap(data):
    data["addressing_pools"]["standby"]["ipv4"]["announced"] = "198.18.16.0/21"


def _outside(data):
    data["addressing_pools"]["anycast"]["ipv4"]["used"] = "198.18.64.0/24"


def _bad_strategy_on_pop2(data):
    return {"pop2": {"addressing_pop_index": 1,
                     "addressing_policies": [dict(data["addressing_policies"][0], strategy="fastest")]}}


def _bad_stage_index(data):
    data["addressing_pools"]["anycast"].update(stage="narrow", stage_index=16)


@pytest.mark.parametrize("mutate, host, expected", [
    (_overlap, "pop1", "pools.standby.ipv4.announced: 198.18.16.0/21 overlaps pool anycast"),
    (_outside, "pop1", "pools.anycast.ipv4.used: 198.18.64.0/24 lies outside the announced prefix 198.18.16.0/20"),
    (_bad_strategy_on_pop2, "pop2", "policies[0](free).strategy: unknown strategy 'fastest'"),
    (_bad_stage_index, "pop3", "pools.anycast.ipv4: stage index 16 is outside 0..15"),
], ids=["overlapping-pools", "used-outside-announced", "bad-strategy", "stage-outside"])
def test_malformed_inventory_names_host_policy_field(tmp_path, mutate, host, expected):
    rc, out = _run(tmp_path, mutate)
    assert rc != 0
    flat = " ".join(out.split())
    assert "host %s: invalid addressing policy: " % host in flat, out
    assert expected in flat, out
    assert not (tmp_path / "out" / ("%s.json" % host)).exists()
