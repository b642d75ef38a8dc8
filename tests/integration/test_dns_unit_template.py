# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The addressing_dns role's unit template renders with Ansible's own templating.

A policy document is a dict, and in Jinja ``doc.pop`` is the dict's ``pop`` method, not its
``pop`` key: the template once read ``addressing_dns_policy.pop.name`` and failed on every host
(found only by the VM lab). Rendered here with ``ansible.builtin.template`` on localhost, with
and without a PoP in the document.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEMPLATE = os.path.join(ROOT, "roles", "addressing_dns", "templates", "agility-dns.service.j2")
DEFAULTS = os.path.join(ROOT, "roles", "addressing_dns", "defaults", "main.yml")


def render(tmp_path, policy):
    """The ExecStart line of the unit rendered with the role's defaults and ``policy``."""
    dest = tmp_path / "agility-dns.service"
    varfile = tmp_path / "policy.json"
    varfile.write_text(json.dumps({"addressing_dns_policy": policy}))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
                           "-m", "ansible.builtin.template", "-a", "src=%s dest=%s" % (TEMPLATE, dest),
                           "-e", "@%s" % DEFAULTS, "-e", "@%s" % varfile], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout
    return [line for line in dest.read_text().splitlines() if line.startswith("ExecStart=")][0]


@pytest.mark.parametrize("policy,nsid", [({"format": "agility-policy", "pop": {"name": "pop1", "index": 0}}, "pop1"),
                                         ({"format": "agility-policy"}, None)])
def test_unit_renders_with_the_pop_identity_when_the_document_has_one(tmp_path, policy, nsid):
    line = render(tmp_path, policy)
    assert ("--nsid %s " % nsid in line) if nsid else ("--nsid" not in line)
    assert "--policy /etc/agility/policy.json" in line
