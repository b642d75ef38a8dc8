# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/plan.yml on a copy of the lab inventory, planning from the inventory alone."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(ROOT, "playbooks", "plan.yml")


def _plan(tmp_path, *extra):
    inv = tmp_path / "inv"
    if not inv.exists():
        shutil.copytree(os.path.join(ROOT, "inventories", "lab"), str(inv))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inv),
                           PLAYBOOK, "-e", "addressing_plan_read_hosts=false"] + list(extra),
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=300)
    return proc.returncode, " ".join(proc.stdout.split()), inv / "addressing-output" / "plan.json"


def test_plan_of_a_stage_move_prints_and_writes_it(tmp_path):
    rc, out, path = _plan(tmp_path, "-e", "addressing_migrate_pool=anycast", "-e", "addressing_migrate_stage=narrow",
                          "--check")
    assert rc == 0, out
    assert "plan: move pool anycast to stage narrow; 3 PoPs in 3 batches" in out, out
    assert "pop2: used 198.18.16.0/20, 2001:db8:100::/44 -> 198.18.16.0/24, 2001:db8:100::/64" in out, out
    doc = json.loads(path.read_text())  # written in check mode too: a report, not a change
    assert [b["hosts"] for b in doc["batches"]] == [["pop1"], ["pop2"], ["pop3"]]
    assert doc["refused"] == [] and doc["estimate_seconds"] == 3 * (2 * (15 + 30) + 10 + 5)


def test_plan_names_every_pop_that_would_be_refused(tmp_path):
    rc, out, path = _plan(tmp_path, "-e", "addressing_migrate_pool=dedicated", "-e", "addressing_migrate_stage=single")
    assert rc != 0
    for host in ("pop1", "pop2", "pop3"):
        assert "host %s: invalid addressing policy: " % host in out, out
    assert "per_pop" in out, out
    assert json.loads(path.read_text())["refused"]


def test_plan_refuses_an_unknown_pool_and_a_bad_serial(tmp_path):
    rc, out, dummy = _plan(tmp_path, "-e", "addressing_migrate_pool=anycats", "-e", "addressing_migrate_stage=narrow")
    assert rc != 0 and "cannot plan the migration: no pool anycats (pools: anycast, dedicated, standby)" in out, out
    assert "(did you mean anycast?)" in out, out
    rc, out, dummy = _plan(tmp_path, "-e", "addressing_migrate_pool=anycast", "-e", "addressing_migrate_stage=narrow",
                           "-e", '{"addressing_serial": ["half"]}')
    assert rc != 0 and "'half' is neither a whole number nor a percentage" in out, out
