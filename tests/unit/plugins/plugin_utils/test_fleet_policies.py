# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of policy_files: plain data, rendering every host, and the atomic writer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.agility.addressing.plugins.module_utils.policy import dumps
from ansible_collections.agility.addressing.plugins.module_utils.pop_policy import build_pop_policy
from ansible_collections.agility.addressing.plugins.plugin_utils.fleet_policies import (
    HoldsTemplate, changes, check_host_name, host_inputs, path_of, plain, render, write_all,
)

POOLS = {"anycast": {"ipv4": {"announced": "198.18.16.0/20"}, "ipv6": {"announced": "2001:db8:100::/44"}}}
POLICIES = [{"name": "free", "match": {"account_types": ["free"]}, "pool": "anycast", "ttl": 30}]


class TaggedStr(str):
    """Stands in for Ansible's tagged text (a str subclass carrying origin and trust)."""


class TaggedInt(int):
    pass


def test_plain_strips_subclasses_and_converts_shared_values_once():
    shared = {TaggedStr("anycast"): {"ipv4": {"announced": TaggedStr("198.18.16.0/20")}}, "n": TaggedInt(3),
              "flag": True, "list": (1, 2.5, None)}
    memo = {}
    first = plain(shared, memo)
    assert first == {"anycast": {"ipv4": {"announced": "198.18.16.0/20"}}, "n": 3, "flag": True,
                     "list": [1, 2.5, None]}
    assert list(first)[0].__class__ is str and first["n"].__class__ is int and first["flag"] is True
    assert plain(shared, memo) is first  # a group_vars value shared by many hosts: converted once


@pytest.mark.parametrize("value", ["{{ x }}", {"a": ["{% if y %}1{% endif %}"]}, TaggedStr("{# c #}")])
def test_plain_refuses_templates(value):
    with pytest.raises(HoldsTemplate):
        plain(value, {})


def test_plain_refuses_other_types():
    with pytest.raises(TypeError, match="unsupported value of type object"):
        plain({"a": object()}, {})


def test_host_inputs_name_the_pop_like_site_yml():
    assert host_inputs("pop1", {"addressing_pools": POOLS})["pop"] == "pop1"
    got = host_inputs("pop1", {"addressing_pools": POOLS, "addressing_pop_name": "fra1", "addressing_pop_index": 2,
                               "other": 1})
    assert got == {"pools": POOLS, "pop": "fra1", "index": 2}


def test_render_matches_the_filter_and_names_every_broken_host():
    inputs = {"pop%d" % i: {"pools": POOLS, "pop": "pop%d" % i, "index": i, "policies": POLICIES} for i in range(3)}
    inputs["pop1"] = dict(inputs["pop1"], policies=[dict(POLICIES[0], pool="nowhere")])
    inputs["pop2"] = {"pop": "pop2"}
    texts, errors = render(inputs)
    assert sorted(texts) == ["pop0"]
    assert texts["pop0"] == dumps(build_pop_policy(POOLS, "pop0", 0, policies=POLICIES))
    assert errors == ["host pop1: invalid addressing policy: addressing_policies[0](free).pool: names no pool "
                      "'nowhere' (pools: anycast)", "host pop2: addressing_pools is not set"]


def test_render_reports_a_value_of_the_wrong_shape():
    texts, errors = render({"pop0": {"pools": POOLS, "pop": "pop0", "policies": "free"}})
    assert texts == {} and len(errors) == 1 and errors[0].startswith("host pop0: ")


@pytest.mark.parametrize("host, ok", [("pop1", True), ("fra-1.example", True), ("", False), ("..", False),
                                      ("a/b", False)])
def test_host_names_must_be_file_names(host, ok):
    assert (check_host_name(host) is None) == ok


def test_changes_and_write_all(tmp_path):
    texts, errors = render({h: {"pools": POOLS, "pop": h} for h in ("pop1", "pop2")})
    assert not errors
    dest = str(tmp_path)
    (tmp_path / "pop1.json").write_text(texts["pop1"])
    plan = changes(dest, texts)
    assert [(h, before) for h, before, _after in plan] == [("pop2", None)]
    write_all(dest, plan, 0o640)
    assert json.loads((tmp_path / "pop2.json").read_text())["pop"] == {"name": "pop2"}
    assert oct(os.stat(path_of(dest, "pop2")).st_mode & 0o777) == "0o640"
    assert changes(dest, texts) == []
    assert [n for n in os.listdir(dest) if n.startswith(".")] == []  # no temporary file left
