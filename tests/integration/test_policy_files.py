# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""render_policies with the policy_files action plugin, on a copy of the lab inventory.

The files must be byte-identical to what the per-PoP policy_file module writes (the way
render_policies worked before, and what site.yml deploys), idempotent, written only when every
host renders, and correct per host when an inventory value is a template of the host itself.
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

PER_HOST_PLAY = """
- hosts: pops
  gather_facts: false
  tasks:
    - agility.addressing.policy_file:
        path: "%s/{{ inventory_hostname }}.json"
        policy: >-
          {{ addressing_pools | agility.addressing.pop_policy(
               addressing_pop_name | default(inventory_hostname), addressing_pop_index | default(none),
               policies=addressing_policies | default([]), zones=addressing_zones | default({}),
               default_policy=addressing_default_policy | default(none),
               stages=addressing_stages | default({}), host=inventory_hostname) }}
      delegate_to: localhost
"""


def _play(args, cwd):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook")] + args,
                          cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=300)
    return proc.returncode, proc.stdout


def _inventory(tmp_path, edit_hosts=None):
    inv = tmp_path / "inv"
    shutil.copytree(os.path.join(ROOT, "inventories", "lab"), str(inv))
    if edit_hosts:
        path = inv / "hosts.yml"
        data = yaml.safe_load(path.read_text())
        edit_hosts(data["pops"]["hosts"])
        path.write_text(yaml.safe_dump(data))
    return inv


def _render(inv, out, *extra):
    return _play(["-i", str(inv), PLAYBOOK, "-e", "addressing_output_dir=%s" % out] + list(extra), str(inv))


def _files(directory):
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(str(directory)))}


def test_same_bytes_as_the_per_pop_module_and_idempotent(tmp_path):
    def names(hosts):
        hosts["pop3"]["addressing_pop_name"] = "fra1"  # what site.yml deploys names the PoP so
    inv = _inventory(tmp_path, names)
    rc, out = _render(inv, tmp_path / "out")
    assert rc == 0, out
    rendered = _files(tmp_path / "out" / "policies")
    assert sorted(rendered) == ["pop1.json", "pop2.json", "pop3.json"]
    assert json.loads(rendered["pop3.json"])["pop"]["name"] == "fra1"

    reference = tmp_path / "reference"
    reference.mkdir()
    (tmp_path / "per_host.yml").write_text(PER_HOST_PLAY % reference)
    rc, out = _play(["-i", str(inv), str(tmp_path / "per_host.yml")], str(inv))
    assert rc == 0, out
    assert _files(reference) == rendered

    rc, out = _render(inv, tmp_path / "out", "--diff")
    assert rc == 0 and "changed=0" in out and "changed=1" not in out, out


def test_check_and_diff_show_only_changed_files_and_write_nothing(tmp_path):
    inv = _inventory(tmp_path)
    assert _render(inv, tmp_path / "out")[0] == 0
    before = _files(tmp_path / "out" / "policies")
    rc, out = _render(inv, tmp_path / "out", "--check", "--diff", "-e", "addressing_pop_index=7",
                      "-e", "addressing_target=pop2")
    assert rc == 0, out
    assert "pop2.json" in out and '"index": 7' in out and "pop1.json" not in out, out
    assert _files(tmp_path / "out" / "policies") == before


def test_templated_inventory_values_render_per_host(tmp_path):
    """A value that is a template of the host must not be shared between hosts."""
    def templated(hosts):
        for host in hosts.values():
            host.pop("addressing_pop_index")
        hosts["pop1"]["addressing_pop_index"] = "{{ groups['pops'].index(inventory_hostname) + 10 }}"
        hosts["pop2"]["addressing_pop_index"] = "{{ groups['pops'].index(inventory_hostname) + 10 }}"
        hosts["pop3"]["addressing_pop_index"] = 3
    inv = _inventory(tmp_path, templated)
    rc, out = _render(inv, tmp_path / "out")
    assert rc == 0, out
    files = _files(tmp_path / "out" / "policies")
    assert [json.loads(files["pop%d.json" % i])["pop"]["index"] for i in (1, 2, 3)] == [10, 11, 3]


def test_a_broken_host_writes_nothing_and_every_broken_host_is_named(tmp_path):
    def broken(hosts):
        hosts["pop1"]["addressing_pop_index"] = 99  # its per-PoP address lies beyond the pool
        hosts["pop3"]["addressing_policies"] = [{"name": "free", "match": {}, "pool": "nowhere", "ttl": 5}]
    inv = _inventory(tmp_path, broken)
    rc, out = _render(inv, tmp_path / "out")
    flat = " ".join(out.split())
    assert rc != 0
    assert ("host pop1: invalid addressing policy: addressing_pools.dedicated.ipv4.used: 198.18.48.0/24 has 256 "
            "addresses; policy leak-watch (per_pop) needs 300") in flat, out
    assert "host pop3: invalid addressing policy: addressing_policies[0](free).pool: " in flat, out
    assert "host pop2" not in flat, out
    assert not (tmp_path / "out" / "policies").exists()
