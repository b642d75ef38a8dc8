# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typos and empty plans fail the real playbooks and roles before anything is written.

Runs ansible-playbook on a copy of the lab inventory (render_policies) and on
localhost (the roles, only their always-tagged preflight: --tags nothing-else).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(ROOT, "playbooks", "render_policies.yml")


def _play(args, cwd):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook")] + args,
                          cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=300)
    return proc.returncode, " ".join(proc.stdout.split())


def _inventory(tmp_path, rename=None):
    inv = tmp_path / "inv"
    shutil.copytree(os.path.join(ROOT, "inventories", "lab"), str(inv))
    if rename:
        path = inv / "group_vars" / "pops" / "addressing.yml"
        data = yaml.safe_load(path.read_text())
        data[rename[1]] = data.pop(rename[0])
        path.write_text(yaml.safe_dump(data))
    return inv


def test_typos_in_inventory_and_extra_vars_fail_render_policies(tmp_path):
    inv = _inventory(tmp_path, rename=("addressing_policies", "addressing_polices"))
    rc, out = _play(["-i", str(inv), PLAYBOOK, "-e", "addressing_render_dir=%s" % (tmp_path / "out"),
                     "-e", '{"addressing_zone": {}}', "-e", "addressing_stage=narrow",
                     "-e", "addressing_pop_index=1"], str(tmp_path))
    assert rc != 0
    for host in ("pop1", "pop2", "pop3"):
        assert ("host %s: addressing_polices is not a variable of agility.addressing (did you mean "
                "addressing_policies?); addressing_stage is not a variable of agility.addressing (did you mean "
                "addressing_stages?); addressing_zone is not a variable of agility.addressing (did you mean "
                "addressing_zones?)" % host) in out, out
    assert "addressing_pop_index must" not in out  # "1" from -e is a number
    assert not (tmp_path / "out").exists()


def test_pop_index_from_extra_vars_renders(tmp_path):
    inv = _inventory(tmp_path)
    rc, out = _play(["-i", str(inv), PLAYBOOK, "-e", "addressing_target=pop2", "-e", "addressing_pop_index=1"],
                    str(tmp_path))
    assert rc == 0, out
    doc = json.loads((inv / "addressing-output" / "policies" / "pop2.json").read_text())
    assert doc["pop"] == {"name": "pop2", "index": 1}


def test_roles_refuse_typos_and_empty_plans(tmp_path):
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": {
            "typo": {"addressing_routes_prefixs": ["198.18.16.0/20"]},
            "empty": {},
            "allowed": {"addressing_allow_empty": "true"},
        }}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "Roles", "hosts": "all", "gather_facts": False,
        "roles": ["agility.addressing.addressing_routes", "agility.addressing.addressing_sklookup"]}]))
    rc, out = _play(["-i", "hosts.yml", "play.yml", "--check", "--tags", "nothing-but-always"], str(tmp_path))
    assert rc != 0
    assert ("host typo: addressing_routes_prefixs is not a variable of agility.addressing (did you mean "
            "addressing_routes_prefixes?); addressing_routes_prefixes is empty: applying it removes every "
            "locally routed prefix of the PoP; set addressing_allow_empty: true if that is meant") in out, out
    assert ("host empty: addressing_routes_prefixes is empty: applying it removes every locally routed prefix "
            "of the PoP") in out, out
    # allowed to be empty: passes both roles' preflights
    assert "allowed : ok=" in out and "failed=0" in out.split("allowed :")[1], out
