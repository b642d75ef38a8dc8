# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One test per documented filter example: the docs are the specification.

Each example block in plugins/filter/<name>.yml is ``key: "{{ expression }}"``
followed by ``# => <json>``; the expression is rendered with our filters and
must equal the documented result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import jinja2
import pytest
import yaml

from ansible_collections.agility.addressing.plugins.filter.addressing import FilterModule

FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")


def _examples():
    cases = []
    for fname in sorted(os.listdir(FILTER_DIR)):
        if not fname.endswith(".yml"):
            continue
        doc = yaml.safe_load(open(os.path.join(FILTER_DIR, fname)))
        for block in doc["EXAMPLES"].strip().split("\n\n"):
            code = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
            result = [line.split("#", 1)[1].strip() for line in block.splitlines()
                      if line.lstrip().startswith("#") and "#" in line]
            expected_lines = []
            for line in result:
                if line.startswith("=>"):
                    expected_lines = [line[2:].strip()]
                elif expected_lines:
                    expected_lines.append(line)
            if not expected_lines:
                continue
            (key, expr), = yaml.safe_load("\n".join(code)).items()
            cases.append(pytest.param(expr, json.loads(" ".join(expected_lines)), id="%s:%s" % (fname[:-4], key)))
    return cases


@pytest.mark.parametrize("expr, expected", _examples())
def test_documented_example(expr, expected):
    env = jinja2.Environment()
    env.filters.update(FilterModule().filters())
    compiled = env.compile_expression(expr.strip()[2:-2].replace("agility.addressing.", ""))
    assert compiled() == expected


def test_every_filter_has_examples():
    names = {p.id.split(":")[0] for p in _examples()}
    assert names == set(FilterModule().filters())
