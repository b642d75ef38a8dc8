# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which addressing_* variables agility.addressing reads, and what is wrong with the ones given.

One home for the known names: the roles' options (roles/*/meta/argument_specs.yml) and
meta/variables.yml (inventory and command-line inputs, and the names the playbooks set
themselves). Pure functions, used by the strict_inputs action plugin on the controller.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import glob
import os
import re

import yaml

PREFIX = "addressing_"
COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BOOLEAN_TEXT = ("yes", "on", "1", "true", "y", "t", "no", "off", "0", "false", "n", "f")
INTEGER_TEXT = re.compile(r"^\s*[-+]?\d+\s*$")

_CACHE = {}


class KnownVariables(object):
    """The addressing_* names of the collection, by kind."""

    def __init__(self, inputs, options, internal):
        self.inputs = inputs  # name -> spec (type, description)
        self.options = options  # name -> role
        self.internal = set(internal)

    @property
    def public(self):
        return set(self.inputs) | set(self.options)

    def __contains__(self, name):
        return name in self.inputs or name in self.options or name in self.internal


def load_known(root=COLLECTION_ROOT):
    """The known names of the collection at ``root`` (read once per process)."""
    if root not in _CACHE:
        with open(os.path.join(root, "meta", "variables.yml")) as handle:
            doc = yaml.safe_load(handle)
        options = {}
        for path in sorted(glob.glob(os.path.join(root, "roles", "*", "meta", "argument_specs.yml"))):
            role = os.path.basename(os.path.dirname(os.path.dirname(path)))
            with open(path) as handle:
                specs = yaml.safe_load(handle)["argument_specs"]
            for entry_point in specs.values():
                for name in entry_point.get("options") or {}:
                    options[name] = role
        _CACHE[root] = KnownVariables(doc.get("inputs") or {}, options, doc.get("internal") or [])
    return _CACHE[root]


def suggest(name, known):
    """The known name closest to ``name``: users' names first, then the internal ones."""
    tail = name[len(PREFIX):]
    for pool in (known.public, known.internal):
        tails = dict((n[len(PREFIX):], n) for n in pool)
        close = difflib.get_close_matches(tail, sorted(tails), n=1, cutoff=0.7)
        if close:
            return tails[close[0]]
    return None


def unknown_problems(names, known):
    """One message per addressing_* name in ``names`` that nothing reads, sorted."""
    problems = []
    for name in sorted(n for n in names if n.startswith(PREFIX) and n not in known):
        hint = suggest(name, known)
        problems.append("%s is not a variable of agility.addressing (%s)" % (
            name, "did you mean %s?" % hint if hint else
            "known ones: meta/variables.yml and roles/*/meta/argument_specs.yml"))
    return problems


def type_problem(name, value, kind):
    """Why ``value`` is not a ``kind``, or None. Text from -e ("1", "true") passes as number or bool."""
    if kind is None or value is None:
        return None
    if kind == "int":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and INTEGER_TEXT.match(value))
        want = "an integer"
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(value, str):
            try:
                float(value)
                ok = True
            except ValueError:
                ok = False
        want = "a number"
    elif kind == "bool":
        ok = isinstance(value, bool) or (isinstance(value, (str, int)) and str(value).lower() in BOOLEAN_TEXT)
        want = "true or false"
    elif kind == "str":
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        want = "a string"
    elif kind == "list":
        ok = isinstance(value, (list, tuple))
        want = "a list"
    elif kind == "dict":
        ok = isinstance(value, dict)
        want = "a mapping"
    else:
        raise ValueError("meta/variables.yml: unknown type %r of %s" % (kind, name))
    if ok:
        return None
    return "%s must be %s, got %r" % (name, want, value)


def empty_problems(checks, allow_empty):
    """Messages for plans that would remove everything a role manages on a PoP."""
    if allow_empty:
        return []
    problems = []
    for check in checks:
        value = check.get("value")
        if value is None or (hasattr(value, "__len__") and len(value) == 0):
            problems.append("%s is empty: applying it removes every %s of the PoP; set "
                            "addressing_allow_empty: true if that is meant" % (check["name"], check["removes"]))
    return problems


def describe(host, problems):
    """The one-line error a user sees."""
    return "host %s: %s" % (host, "; ".join(problems))
