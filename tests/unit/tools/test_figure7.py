# -*- coding: utf-8 -*-
"""The Figure 7 simulator reproduces the paper's shape (properties, not fixed numbers)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOL = os.path.join(ROOT, "tools", "figure7.py")

pytest.importorskip("numpy")


@pytest.mark.parametrize("seed", [1, 2])
def test_shape_of_figure7(tmp_path, seed):
    png = str(tmp_path / "f7.png")
    args = [sys.executable, TOOL, "--json", "--seed", str(seed)]
    try:
        import matplotlib  # noqa: F401
        args += ["--png", png]
    except ImportError:
        png = None
    r = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    rep = json.loads(r.stdout)
    assert rep["params"]["hostnames"] >= 1000000
    assert rep["seconds"] < 60
    a, a_all, b, c = (rep["panels"][k] for k in ("a", "a_all", "b", "c"))
    assert (a["addresses"], b["addresses"], c["addresses"]) == (8192, 4096, 256)
    # (a) static bindings: orders of magnitude between busiest and quietest address
    assert a["orders_of_magnitude"] >= 3 and a_all["orders_of_magnitude"] >= a["orders_of_magnitude"]
    # (b) random over a /20: far narrower than static; (c) random over a /24: within a factor of 2
    assert b["orders_of_magnitude"] < a["orders_of_magnitude"] - 2
    assert c["max_min_ratio"] is not None and c["max_min_ratio"] < 2
    assert a["gini"] > b["gini"] > c["gini"]
    if png:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_text_output_prints_factors():
    r = subprocess.run([sys.executable, TOOL, "--hostnames", "100000", "--requests", "1000000"],
                       capture_output=True, text=True, check=True, timeout=60)
    for needle in ("(a) static", "(b) random", "(c) random", "max/min", "Gini", "orders of magnitude"):
        assert needle in r.stdout
