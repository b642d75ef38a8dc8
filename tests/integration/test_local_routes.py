# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""local_routes against the real kernel, in a network namespace of its own."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
pytestmark = pytest.mark.root

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - agility.addressing.local_routes:
        prefixes: "{{ p }}"
        state: "{{ s | default('present') }}"
        state_file: %(state)s
      register: r
    - ansible.builtin.copy:
        content: "{{ r | to_json }}"
        dest: %(out)s
        mode: "0600"
      check_mode: false
"""


def _make_netns():
    name = "lr-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return name


@pytest.fixture
def netns():
    name = _make_netns()
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def other_netns():
    name = _make_netns()
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def _routes(ns):
    out = []
    for fam in ("-4", "-6"):
        text = subprocess.run(["ip", "-n", ns, "-j", fam, "route", "show", "table", "local", "type", "local",
                               "dev", "lo"], check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
        out += [r["dst"] for r in json.loads(text) if "/" in r["dst"] and not r["dst"].startswith("127.")]
    return sorted(out)


def _run(ns, tmp_path, prefixes, *extra):
    play = tmp_path / "play.yml"
    out = tmp_path / "result.json"
    play.write_text(PLAY % {"state": tmp_path / "state.json", "out": out})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    proc = subprocess.run(["ip", "netns", "exec", ns, os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           str(play), "-e", json.dumps({"p": prefixes})] + list(extra),
                          env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout
    return json.loads(out.read_text())


def test_adds_is_idempotent_and_narrows_without_touching_foreign_routes(netns, tmp_path):
    subprocess.run(["ip", "-n", netns, "route", "add", "local", "198.51.100.0/24", "dev", "lo", "table", "local"],
                   check=True)
    wanted = ["198.18.16.0/20", "2001:db8:100::/44", "198.51.100.0/24"]
    first = _run(netns, tmp_path, wanted)
    assert first["changed"] and first["added"] == ["198.18.16.0/20", "2001:db8:100::/44"]
    assert _routes(netns) == ["198.18.16.0/20", "198.51.100.0/24", "2001:db8:100::/44"]
    assert _run(netns, tmp_path, wanted)["changed"] is False
    narrowed = _run(netns, tmp_path, ["198.18.16.0/24"])
    assert sorted(narrowed["removed"]) == ["198.18.16.0/20", "2001:db8:100::/44"]
    # the route somebody else added survives: it was never ours
    assert _routes(netns) == ["198.18.16.0/24", "198.51.100.0/24"]


def test_check_mode_changes_nothing(netns, tmp_path):
    result = _run(netns, tmp_path, ["198.18.16.0/20"], "--check")
    assert result["changed"] and result["added"] == ["198.18.16.0/20"]
    assert _routes(netns) == []


def test_absent_removes_only_what_it_added(netns, tmp_path):
    _run(netns, tmp_path, ["198.18.16.0/20", "2001:db8:100::/44"])
    subprocess.run(["ip", "-n", netns, "route", "add", "local", "203.0.113.0/24", "dev", "lo", "table", "local"],
                   check=True)
    result = _run(netns, tmp_path, [], "-e", "s=absent")
    assert sorted(result["removed"]) == ["198.18.16.0/20", "2001:db8:100::/44"]
    assert _routes(netns) == ["203.0.113.0/24"]


def test_each_namespace_keeps_its_own_record(netns, other_netns, tmp_path):
    """Issue 14: with one record for all namespaces, state=absent in a second namespace reported
    changed, forgot the first namespace's route and left it behind."""
    first = _run(netns, tmp_path, ["198.18.16.0/20"])
    elsewhere = _run(other_netns, tmp_path, [], "-e", "s=absent")
    assert elsewhere["changed"] is False and elsewhere["removed"] == []
    assert _routes(netns) == ["198.18.16.0/20"]
    back = _run(netns, tmp_path, [], "-e", "s=absent")
    assert back["removed"] == ["198.18.16.0/20"] and _routes(netns) == []
    assert first["netns"] == netns and first["state_file"] == str(tmp_path / ("state.%s.json" % netns))
