# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a PoP's policy document from inventory variables (pure function).

Inventory describes pools by their *announced* prefixes and a *stage*; the
policy file carries the resolved *used* prefixes, so the responder never does
stage arithmetic.  Standard library only: the same code serves the
``pop_policy`` filter and anything else that needs the document.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import difflib
import re

from ansible_collections.agility.addressing.plugins.module_utils.policy import (
    FAMILIES, FORMAT, VERSION, PolicyError, format_problems, parse_prefix, stage_prefix, validate,
)

DEFAULT_STAGES = {
    "wide": {},  # the announced prefixes themselves
    "narrow": {"ipv4": 24, "ipv6": 64},
    "single": {"ipv4": 32, "ipv6": 128},
}
POOL_KEYS = FAMILIES + ("stage", "stages", "stage_index")
FAMILY_KEYS = ("announced", "used")
# Policy-file fields as the inventory variables they come from, for error messages
INVENTORY_FIELDS = (
    ("pop.index", "addressing_pop_index"),
    ("pop.name", "addressing_pop_name"),
    ("pools", "addressing_pools"),
    ("policies", "addressing_policies"),
    ("zones", "addressing_zones"),
    ("default_policy", "addressing_default_policy"),
)
INTEGER_TEXT = re.compile(r"^\s*[-+]?\d+\s*$")


def as_int(value):
    """``value``, or the integer a text such as ``"1"`` (``-e addressing_pop_index=1``) spells."""
    if isinstance(value, str) and INTEGER_TEXT.match(value):
        return int(value)
    return value


def _close(word, choices):
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return " (did you mean %s?)" % close[0] if close else ""


def resolve_pool(name, pool, stage=None):
    """``{family: {announced, used}}`` for one inventory pool at ``stage``.

    ``stage`` overrides the pool's own ``stage`` (default ``wide``); it is a
    stage name from the pool's ``stages`` map (default: wide, narrow, single)
    or a mapping ``{ipv4: 24, ipv6: 64}`` of prefix lengths.
    """
    field = "pools.%s" % name
    if not isinstance(pool, dict):
        raise PolicyError([(field, "must be a mapping")])
    unknown = [k for k in pool if k not in POOL_KEYS]
    if unknown:
        raise PolicyError([("%s.%s" % (field, k), "unknown key%s (allowed: %s)" % (_close(k, POOL_KEYS), ", ".join(POOL_KEYS)))
                           for k in unknown])
    stages = dict(DEFAULT_STAGES)
    stages.update(pool.get("stages") or {})
    stage = stage if stage is not None else pool.get("stage", "wide")
    if isinstance(stage, dict):
        lengths = stage
    elif stage in stages:
        lengths = stages[stage]
    else:
        raise PolicyError([(field + ".stage", "unknown stage %r (stages: %s)" % (stage, ", ".join(sorted(stages))))])
    index = as_int(pool.get("stage_index", 0))
    out = {}
    problems = []
    for family in FAMILIES:
        spec = pool.get(family)
        if spec is None:
            continue
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in FAMILY_KEYS]
            if unknown:
                problems.extend(("%s.%s.%s" % (field, family, k),
                                 "unknown key%s (allowed: %s)" % (_close(k, FAMILY_KEYS), ", ".join(FAMILY_KEYS)))
                                for k in unknown)
                continue
        announced = spec.get("announced") if isinstance(spec, dict) else spec
        try:
            net = parse_prefix(announced, 4 if family == "ipv4" else 6)
            if isinstance(spec, dict) and "used" in spec:
                # an explicit used prefix wins over the stage; policy validation checks it
                used = spec["used"]
            else:
                used = stage_prefix(net, lengths.get(family, net.prefixlen), index)
        except (ValueError, TypeError) as exc:
            problems.append(("%s.%s" % (field, family), str(exc)))
            continue
        out[family] = {"announced": str(net), "used": str(used)}
    if problems:
        raise PolicyError(problems)
    return out


def build_pop_policy(pools, pop, index=None, policies=None, zones=None, default_policy=None,
                     stages=None, revision=None, pool_overrides=None):
    """The validated policy document of one PoP; raises ``PolicyError``.

    ``stages`` maps pool name to a stage that overrides the pool's own;
    ``pool_overrides`` maps policy name to the pool it uses instead of its
    own (moving a policy to another prefix entirely, e.g. in an incident).
    """
    problems = []
    index = as_int(index)
    policies = copy.deepcopy(policies or [])
    pool_overrides = pool_overrides or {}
    names = [p.get("name") for p in policies if isinstance(p, dict)]
    for unknown in sorted(set(pool_overrides) - set(names)):
        problems.append(("pool_overrides.%s" % unknown, "names no policy"))
    for pol in policies:
        if isinstance(pol, dict) and pol.get("name") in pool_overrides:
            pol["pool"] = pool_overrides[pol["name"]]
    resolved = {}
    stages = stages or {}
    if not isinstance(pools, dict) or not pools:
        raise PolicyError([("pools", "must be a non-empty mapping of pool name to pool")])
    for unknown in sorted(set(stages) - set(pools)):
        problems.append(("stages.%s" % unknown, "names no pool"))
    for name, pool in pools.items():
        try:
            resolved[name] = resolve_pool(name, pool, stages.get(name))
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(problems)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "pop": {"name": pop},
        "pools": resolved,
        "policies": policies,
        "zones": copy.deepcopy(zones or {}),
    }
    if index is not None:
        doc["pop"]["index"] = index
    if default_policy:
        doc["default_policy"] = default_policy
    if revision is not None:
        doc["revision"] = revision
    problems = validate(doc)
    if problems:
        raise PolicyError(problems)
    return doc


def inventory_field(field):
    """The inventory variable a policy-file field comes from: ``pop.index`` is ``addressing_pop_index``."""
    for doc_field, variable in INVENTORY_FIELDS:
        if field == doc_field or field.startswith(doc_field + ".") or field.startswith(doc_field + "["):
            return variable + field[len(doc_field):]
    return field


def describe(host, exc):
    """The error text a user sees: names the host, then each inventory variable."""
    return "host %s: invalid addressing policy: %s" % (
        host, format_problems([(inventory_field(field), msg) for field, msg in exc.problems]))
