"""Bad policy files: one clear line from --check-config and at start, and a running server
that gets one on SIGHUP (or ``agility-dns reload``) keeps its last good policy and keeps
answering (issue 11, defect 1)."""

import os
import subprocess

import pytest

from dns_helpers import AGILITY_DNS, free_port, policy_doc, query, wait_until, write_doc


def _doc(edit):
    doc = policy_doc()
    edit(doc)
    return doc


def _set(path, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


EX = ("zones", "example.com")
PRO = ("zones", "pro.example")
# name -> (document or raw text, a field the error line must name)
BAD = {
    "hostname-int": (_doc(_set(PRO + ("hostnames",), ["www", 5])), "zones[pro.example.].hostnames[1]"),
    "record-name-int": (_doc(_set(EX + ("records", 0, "name"), 5)), "zones[example.com.].records[0].name"),
    "hostname-empty-label": (_doc(_set(PRO + ("hostnames",), ["a..b"])), "zones[pro.example.].hostnames[0]"),
    "hostname-long-label": (_doc(_set(PRO + ("hostnames",), ["a" * 64])), "zones[pro.example.].hostnames[0]"),
    "record-name-empty-label": (_doc(_set(EX + ("records", 0, "name"), "ns1..x")),
                                "zones[example.com.].records[0].name"),
    "record-name-long-label": (_doc(_set(EX + ("records", 0, "name"), "b" * 64)),
                               "zones[example.com.].records[0].name"),
    "records-5": (_doc(_set(EX + ("records",), 5)), "zones[example.com.].records"),
    "pool-a-list": (_doc(_set(("policies", 0, "pool"), ["ecs"])), "policies[0](ecs-nets).pool"),
    "default-policy-a-list": (_doc(_set(("default_policy",), ["free"])), "default_policy"),
    "offset-a-string": (_doc(_set(("policies", 0, "offset"), "1")), "policies[0](ecs-nets).offset"),
    "nested-100000": ("[" * 100000 + "]" * 100000, "(file)"),
}


def _write(path, bad):
    if isinstance(bad, str):
        with open(path, "w") as handle:
            handle.write(bad)
        return str(path)
    return write_doc(path, bad)


def _run(*args):
    return subprocess.run([AGILITY_DNS] + list(args), capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_config_and_start_give_one_line(tmp_path, case):
    bad, field = BAD[case]
    path = _write(tmp_path / "bad.json", bad)
    r = _run("--check-config", path)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "invalid" in lines[0] and field in lines[0], lines[0]
    r = _run("--policy", path, "--listen", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "event=start" in lines[0] and "result=failed" in lines[0] and field in lines[0], lines[0]


def test_sighup_with_bad_files_keeps_last_good_policy(make_server):
    """Every bad file in turn, by SIGHUP: one failed-reload line each, the workers stay,
    and the old policy (TTL 300) keeps answering over UDP and TCP."""
    srv = make_server(args=("--workers", "2"))
    assert query("www.example.com", "A", srv.port).answer[0].ttl == 300
    for n, case in enumerate(sorted(BAD), start=1):
        tmp = srv.policy + ".tmp"
        _write(tmp, BAD[case][0])
        os.rename(tmp, srv.policy)
        srv.hup()
        assert wait_until(lambda: srv.metric("agility_dns_reloads_total", result="failed") == n,
                          timeout=10.0), (case, srv.logtext())
        assert srv.proc.poll() is None, srv.logtext()
        assert query("www.example.com", "A", srv.port).answer[0].ttl == 300, case
        assert query("www.example.com", "A", srv.port, tcp=True).answer[0].ttl == 300, case
    failed = [l for l in srv.logtext().splitlines() if "event=reload" in l and "result=failed" in l]
    assert len(failed) == len(BAD)
    for line, case in zip(failed, sorted(BAD)):
        assert BAD[case][1] in line, (case, line)
    assert "Traceback" not in srv.logtext()
    assert srv.metric("agility_dns_workers") == 2 and srv.metric("agility_dns_worker_restarts_total") == 0
    # and a good file still reloads afterwards
    write_doc(srv.policy, _doc(_set(("policies", -1, "ttl"), 77)))
    srv.hup()
    assert wait_until(lambda: query("www.example.com", "A", srv.port).answer[0].ttl == 77, timeout=10.0)
