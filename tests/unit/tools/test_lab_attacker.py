# -*- coding: utf-8 -*-
"""tools/lab_attacker.py refuses anything but a bounded load on lab addresses in the lab namespace."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOL = os.path.join(ROOT, "tools", "lab_attacker.py")


def _run(*args):
    # LAB_NS names a namespace that does not exist, so nothing can be sent from here
    env = dict(os.environ, LAB_NS="agility-test-no-such-namespace")
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True,
                          check=False, timeout=30, env=env)


@pytest.mark.parametrize("args, message", [
    (["--address", "8.8.8.8"], "8.8.8.8 is not a lab address"),
    (["--address", "2001:4860::8888"], "is not a lab address"),
    (["--address", "198.18.48.100", "--rate", "501"], "bounded load only"),
    (["--address", "198.18.48.100", "--duration", "901"], "bounded load only"),
    (["--name", "svc1.example.edu"], "--name needs --dns"),
    (["--address", "198.18.48.100"], "run inside the lab's network namespace"),
])
def test_refuses(args, message):
    res = _run(*args)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
