# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""address_hits and route_leak_check: argument handling, parsing, check mode, never changed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.server
import json
import stat
import threading

import pytest

from ansible_collections.agility.addressing.plugins.modules import address_hits, route_leak_check
from ansible_collections.agility.addressing.tests.unit.plugins.modules.module_harness import run_module


def run(mod, args, check=False):
    return run_module(mod.main, args, check=check)


ROWS = [{"address": "198.18.16.0", "hits": 120, "drops": 0},
        {"address": "198.18.16.1", "hits": 30, "drops": 2},
        {"address": "2001:db8:100:0:0::1", "hits": 7, "drops": 0},
        {"address": "192.0.2.53", "hits": 999, "drops": 0}]


@pytest.fixture
def fake_lookup(tmp_path):
    """A stand-in agility-lookup that prints ROWS and records its argv."""
    path = tmp_path / "agility-lookup"
    argv_file = tmp_path / "argv.json"
    path.write_text("#!%s\nimport json, sys\njson.dump(sys.argv[1:], open(%r, 'w'))\n"
                    "print(json.dumps({'addresses': %s}))\n" % (
                        __import__("sys").executable, str(argv_file), json.dumps(ROWS)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path), argv_file


METRICS = """# HELP agility_dns_answers_total x
# TYPE agility_dns_answers_total counter
agility_dns_answers_total{prefix="198.18.16.0/24"} 4000
agility_dns_answers_total{prefix="2001:db8:100::/64"} 12
agility_dns_policy_info{digest="abc123",pop="pop1",path="/etc/agility/policy.json"} 1
agility_dns_queries_total{qtype="A",rcode="NOERROR",policy="free"} 4000
"""


@pytest.fixture
def metrics_url():
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = METRICS.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d/metrics" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_reads_loader_and_responder(fake_lookup, metrics_url):
    exe, argv_file = fake_lookup
    r = run(address_hits, {"executable": exe, "bpffs": "/x/bpf", "netns": "/run/netns/p1",
                           "dns_metrics_url": metrics_url})
    assert r["changed"] is False
    assert json.load(open(str(argv_file))) == ["--bpffs", "/x/bpf", "--netns", "/run/netns/p1", "addresses", "--json"]
    assert r["addresses"]["2001:db8:100::1"] == 7  # canonical text
    assert r["total_hits"] == 120 + 30 + 7 + 999
    assert r["drops"]["198.18.16.1"] == 2
    assert r["dns_answers"] == {"198.18.16.0/24": 4000, "2001:db8:100::/64": 12}
    assert r["dns_policy_digest"] == "abc123"
    assert r["summary"]["order"][0] == "192.0.2.53"


def test_prefix_filter_and_check_mode(fake_lookup):
    exe, dummy = fake_lookup
    r = run(address_hits, {"executable": exe, "prefixes": ["198.18.16.0/24", "2001:db8:100::/64"]}, check=True)
    assert r["changed"] is False
    assert sorted(r["addresses"]) == ["198.18.16.0", "198.18.16.1", "2001:db8:100::1"]
    assert r["summary"]["series"] == [120, 30, 7]
    assert "dns_answers" not in r


def test_loader_failure_is_reported(tmp_path):
    exe = tmp_path / "agility-lookup"
    exe.write_text("#!/bin/sh\necho 'agility-lookup: error: not loaded' >&2\nexit 1\n")
    exe.chmod(0o755)
    r = run(address_hits, {"executable": str(exe)})
    assert r["failed"] and "not loaded" in r["msg"]


def test_missing_executable_fails_cleanly(tmp_path):
    r = run(address_hits, {"executable": str(tmp_path / "nope")})
    assert r["failed"] and "cannot run" in r["msg"]


def test_hung_loader_times_out(tmp_path):
    exe = tmp_path / "agility-lookup"
    exe.write_text("#!/bin/sh\nsleep 30\n")
    exe.chmod(0o755)
    r = run(address_hits, {"executable": str(exe), "timeout": 1})
    assert r["failed"] and "did not answer within 1 s" in r["msg"]


def test_bad_output_is_reported(tmp_path):
    exe = tmp_path / "agility-lookup"
    exe.write_text("#!/bin/sh\necho '{\"rows\": []}'\n")
    exe.chmod(0o755)
    r = run(address_hits, {"executable": str(exe)})
    assert r["failed"] and "unexpected output" in r["msg"]


def test_bad_prefix_fails(fake_lookup):
    r = run(address_hits, {"executable": fake_lookup[0], "prefixes": ["not-a-prefix"]})
    assert r["failed"] and "bad prefix" in r["msg"]


def test_unreachable_metrics_fails(fake_lookup):
    r = run(address_hits, {"executable": fake_lookup[0], "dns_metrics_url": "http://127.0.0.1:1/metrics", "timeout": 2})
    assert r["failed"] and "cannot read" in r["msg"]


def test_parse_prometheus_escapes():
    rows = address_hits.parse_prometheus('m{a="x\\"y",b="z"} 3\n# c\nbad line\nn 1e3\n')
    assert rows == [("m", {"a": 'x"y', "b": "z"}, 3.0), ("n", {}, 1000.0)]


OWN = {"pop1": ["198.18.16.0"], "pop2": ["198.18.16.1"]}


def test_route_leak_check_with_baseline_names_the_leak():
    args = {"counters": {"pop1": {"198.18.16.0": 1100}, "pop2": {"198.18.16.1": 600, "198.18.16.0": 450}},
            "baseline": {"pop1": {"198.18.16.0": 1000}, "pop2": {"198.18.16.1": 500, "198.18.16.0": 50}},
            "own_addresses": OWN}
    r = run(route_leak_check, args, check=True)
    assert r["changed"] is False and r["leaked"] is True
    assert r["leaks"] == [{"at": "pop2", "owner": "pop1", "address": "198.18.16.0", "hits": 400, "share": 0.8}]
    assert r["affected_owners"] == ["pop1"]
    assert "pop2" in r["messages"][0] and "198.18.16.0" in r["messages"][0]


def test_route_leak_check_quiet_fleet_and_fail_on_leak():
    quiet = {"counters": {"pop1": {"198.18.16.0": 100}, "pop2": {"198.18.16.1": 100, "198.18.16.0": 2}},
             "own_addresses": OWN, "fail_on_leak": True}
    r = run(route_leak_check, quiet)
    assert r["leaked"] is False and r["per_pop"]["pop2"]["foreign_hits"] == 2
    loud = dict(quiet, counters={"pop1": {}, "pop2": {"198.18.16.0": 50}})
    r = run(route_leak_check, loud)
    assert r["failed"] and "pop2" in r["msg"] and "pop1" in r["msg"]


def test_route_leak_check_needs_every_pops_addresses():
    r = run(route_leak_check, {"counters": {"pop9": {}}, "own_addresses": OWN})
    assert r["failed"] and "pop9" in r["msg"]
    r = run(route_leak_check, {"counters": {}, "own_addresses": OWN, "threshold": 1.5})
    assert r["failed"] and "threshold" in r["msg"]
