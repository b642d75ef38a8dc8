# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fuzz the policy model: whatever the document, ``validate`` returns problems and
``loads``/``check``/``compile_policy`` raise ``PolicyError`` and nothing else."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.agility.addressing.plugins.module_utils import policy as P

from ansible_collections.agility.addressing.tests.unit.plugins.module_utils.policy_samples import good

# strings a policy file uses, and ones that break names, prefixes and types
WORDS = ("", ".", "@", "*", "a..b", "a" * 64, "b" * 63, "x.", "-a", "a-", "a\\", "\\065", "é.example.",
         "A", "AAAA", "MX", "NS", "CNAME", "TXT", "random", "single", "per_pop", "partition",
         "edge", "standby", "free", "pro", "fallback", "example.com.", "pro.example.", "www",
         "198.18.16.0/24", "198.18.16.1/24", "::ffff:0:0/96", "2001:db8:100::/64", "10.0.0.0/8",
         "192.0.2.1", "2001:db8::1", "ns1", "\"hello\"", "10 mail", ".".join(["c" * 63] * 4))
KEYS = P.TOP_KEYS + P.POLICY_KEYS + P.MATCH_KEYS + P.ZONE_KEYS + P.SOA_KEYS + P.RECORD_KEYS + \
    P.FAMILIES + P.POOL_FAMILY_KEYS + ("index",)

scalars = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.integers(-2, 70000)
           | st.floats(allow_nan=False) | st.text(max_size=20) | st.sampled_from(WORDS))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                                                                inner, max_size=4),
    max_leaves=12)


def _paths(node, prefix=()):
    """Every (container path, key) in a document."""
    out = []
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return out
    for key, value in items:
        out.append(prefix + (key,))
        out.extend(_paths(value, prefix + (key,)))
    return out


def _at(doc, path):
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated_documents(draw):
    doc = good()
    for dummy in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _at(doc, path[:-1])
        action = draw(st.sampled_from(("replace", "replace", "word", "delete", "add")))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "word":
            parent[path[-1]] = draw(st.sampled_from(WORDS))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS) | st.sampled_from(WORDS))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return doc


def _only_policy_error(doc):
    problems = P.validate(doc)
    assert isinstance(problems, list)
    try:
        compiled = P.loads(json.dumps(doc))
        compiled = P.compile_policy(compiled)
    except P.PolicyError as exc:
        assert exc.problems and "\n" not in str(exc)
        return
    assert not problems
    # a document that compiles also answers
    for zone in compiled.zones.values():
        for qtype in P.POLICY_QTYPES:
            pol = compiled.match(qtype, zone)
            if pol is not None:
                pol.answer(qtype, "www." + zone.name)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_documents())
def test_mutated_documents_raise_only_policy_error(doc):
    _only_policy_error(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(json_values)
def test_arbitrary_json_raises_only_policy_error(doc):
    _only_policy_error(doc)


@pytest.mark.parametrize("text", ["[" * 100000, "{\"a\":" * 100000, "[" * 100000 + "]" * 100000,
                                  "[" * (P.MAX_JSON_DEPTH + 1) + "]" * (P.MAX_JSON_DEPTH + 1)])
def test_deep_nesting_is_refused_before_parsing(text):
    with pytest.raises(P.PolicyError) as info:
        P.loads(text)
    assert "nest" in str(info.value)


def test_brackets_inside_strings_do_not_count():
    doc = good()
    doc["revision"] = "[{" * 5000
    assert P.loads(json.dumps(doc)) == doc
    assert P.loads(("[" * P.MAX_JSON_DEPTH) + "]" * P.MAX_JSON_DEPTH) == \
        json.loads(("[" * P.MAX_JSON_DEPTH) + "]" * P.MAX_JSON_DEPTH)


def test_good_document_still_compiles():
    assert P.compile_policy(P.loads(P.dumps(copy.deepcopy(good())))).pop_name == "pop1"
