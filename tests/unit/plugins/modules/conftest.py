# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest


@pytest.fixture(autouse=True)
def capture_exits(monkeypatch):
    """Every module test: exit_json/fail_json raise instead of exiting the test process."""
    # imported here, not at the top: the collection loader that resolves
    # ansible_collections.* is in place once the test modules are collected
    from ansible_collections.agility.addressing.tests.unit.plugins.modules.module_harness import patch_exits
    patch_exits(monkeypatch)
