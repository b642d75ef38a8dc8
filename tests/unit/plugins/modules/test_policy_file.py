# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""policy_file: writes, idempotence, check mode, diff, refusal of bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.agility.addressing.plugins.module_utils import policy as P
from ansible_collections.agility.addressing.plugins.modules import policy_file
from ansible_collections.agility.addressing.tests.unit.plugins.module_utils.policy_samples import good
from ansible_collections.agility.addressing.tests.unit.plugins.modules.module_harness import run_module


def run(args, check=False, diff=False):
    return run_module(policy_file.main, args, check=check, diff=diff)


def test_writes_canonical_json_with_mode(tmp_path):
    path = str(tmp_path / "policy.json")
    result = run({"path": path, "policy": good()})
    assert result["changed"] is True
    assert json.load(open(path)) == good()
    assert open(path).read() == P.dumps(good())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert result["digest"] == P.digest(good())


def test_second_run_changes_nothing(tmp_path):
    path = str(tmp_path / "policy.json")
    run({"path": path, "policy": good()})
    assert run({"path": path, "policy": good()})["changed"] is False


def test_check_mode_predicts_and_writes_nothing(tmp_path):
    path = str(tmp_path / "policy.json")
    result = run({"path": path, "policy": good()}, check=True, diff=True)
    assert result["changed"] is True
    assert not os.path.exists(path)
    assert result["diff"]["before"] == ""
    assert json.loads(result["diff"]["after"]) == good()


def test_diff_shows_the_stage_change(tmp_path):
    path = str(tmp_path / "policy.json")
    run({"path": path, "policy": good()})
    doc = good()
    doc["pools"]["edge"]["ipv4"]["used"] = "198.18.16.0/32"
    doc["pop"]["index"] = 0
    result = run({"path": path, "policy": doc}, check=True, diff=True)
    assert result["changed"] is True
    diff = result["diff"]
    assert '"used": "198.18.16.0/24"' in diff["before"]
    assert '"used": "198.18.16.0/32"' in diff["after"]
    assert json.load(open(path)) == good()  # check mode left it alone


def test_mode_change_alone_is_a_change(tmp_path):
    path = str(tmp_path / "policy.json")
    run({"path": path, "policy": good()})
    result = run({"path": path, "policy": good(), "mode": "0600"})
    assert result["changed"] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("field, value, named", [
    ("strategy", "fastest", "policies[0](free).strategy"),
    ("ttl", 999999, "policies[0](free).ttl"),
    ("pool", "gone", "policies[0](free).pool"),
])
def test_bad_input_fails_naming_the_field_and_keeps_the_file(tmp_path, field, value, named):
    path = str(tmp_path / "policy.json")
    run({"path": path, "policy": good()})
    before = open(path).read()
    doc = good()
    doc["policies"][0][field] = value
    result = run({"path": path, "policy": doc})
    assert result["failed"] is True
    assert named in result["msg"]
    assert any(p["field"] == named for p in result["problems"])
    assert open(path).read() == before
    assert os.listdir(str(tmp_path)) == ["policy.json"]  # no temp file left behind


def test_validate_cmd_rejection_keeps_the_file(tmp_path):
    path = str(tmp_path / "policy.json")
    run({"path": path, "policy": good()})
    before = open(path).read()
    doc = good()
    doc["policies"][0]["ttl"] = 30
    result = run({"path": path, "policy": doc, "validate_cmd": "/bin/sh -c 'echo nope >&2; exit 3' %s"})
    assert result["failed"] is True
    assert "nope" in result["msg"]
    assert open(path).read() == before
    assert os.listdir(str(tmp_path)) == ["policy.json"]


def test_validate_cmd_accepting_writes(tmp_path):
    path = str(tmp_path / "policy.json")
    result = run({"path": path, "policy": good(), "validate_cmd": "/usr/bin/test -s %s"})
    assert result["changed"] is True and os.path.exists(path)


def test_missing_directory_is_a_clear_error(tmp_path):
    result = run({"path": str(tmp_path / "nope" / "policy.json"), "policy": good()})
    assert result["failed"] is True and "does not exist" in result["msg"]


def test_serial_auto_resolved_against_the_file_and_backwards_refused(tmp_path):
    path = str(tmp_path / "policy.json")
    doc = good()
    doc["zones"]["example.com."]["soa"]["serial"] = "auto"
    first = run({"path": path, "policy": doc})
    written = json.load(open(path))
    serial = written["zones"]["example.com."]["soa"]["serial"]
    assert isinstance(serial, int) and serial > 1 and first["digest"] == P.digest(written)
    assert run({"path": path, "policy": doc})["changed"] is False  # same content, same serial
    back = good()
    back["zones"]["pro.example."]["soa"]["serial"] = 6
    result = run({"path": path, "policy": back})
    assert result["failed"] and "zones[pro.example.].soa.serial: 6 goes backwards from 7" in result["msg"]
    assert json.load(open(path)) == written  # nothing written
