# -*- coding: utf-8 -*-
"""tools/load_report.py: the report of collected per-address counters."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOL = os.path.join(ROOT, "tools", "load_report.py")


def _run(tmp_path, counters, *args):
    path = tmp_path / "counters.json"
    path.write_text(json.dumps(counters))
    return subprocess.run([sys.executable, TOOL, str(path), "--json", str(tmp_path / "out.json")] + list(args),
                          capture_output=True, text=True, check=False, timeout=60)


def test_baseline_reports_only_the_hits_since(tmp_path):
    before = {"pop1": {"addresses": {"198.18.16.1": 100, "198.18.16.2": 5}}}
    (tmp_path / "before.json").write_text(json.dumps(before))
    after = {"pop1": {"addresses": {"198.18.16.1": 110, "198.18.16.2": 25, "198.18.16.3": 20}}}
    res = _run(tmp_path, after, "--baseline", str(tmp_path / "before.json"), "--expected", "198.18.16.0/30")
    assert res.returncode == 0, res.stderr
    fleet = json.loads((tmp_path / "out.json").read_text())["fleet"]
    # since the baseline: .1 10, .2 20, .3 20, and .0 idle
    assert sorted(fleet["series"], reverse=True) == [20, 20, 10, 0]


def test_a_baseline_from_another_loader_is_refused(tmp_path):
    (tmp_path / "before.json").write_text(json.dumps({"pop1": {"addresses": {"198.18.16.1": 100}}}))
    res = _run(tmp_path, {"pop1": {"addresses": {"198.18.16.1": 3}}}, "--baseline", str(tmp_path / "before.json"))
    assert res.returncode != 0
    assert "went down from 100 to 3" in res.stderr
    assert "Traceback" not in res.stderr
