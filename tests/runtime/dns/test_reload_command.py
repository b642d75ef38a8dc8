"""``agility-dns reload`` reports the reload's result (issue 11, defect 6): exit 0 with the
new digest once every worker serves it, exit 1 with the reason when the file is bad (the
server keeps answering with its last good policy), and sd_notify RELOADING=1 / READY=1
around a reload for systemd's Type=notify."""

import os
import re
import signal
import socket
import subprocess
import time

from dns_helpers import AGILITY_DNS, policy_doc, query, write_doc


def _run(*args, timeout=60):
    return subprocess.run([AGILITY_DNS] + list(args), capture_output=True, text=True, timeout=timeout, check=False)


def _replace(path, doc_or_text):
    tmp = path + ".tmp"
    if isinstance(doc_or_text, str):
        with open(tmp, "w") as handle:
            handle.write(doc_or_text)
    else:
        write_doc(tmp, doc_or_text)
    os.rename(tmp, path)


def _digest_in_use(srv):
    info = [l for l in srv.metrics().splitlines() if l.startswith("agility_dns_policy_info")][0]
    return re.search(r'digest="(\w+)"', info).group(1)


def test_reload_command_reports_success_and_failure(make_server):
    srv = make_server(args=("--workers", "2"))
    before = _digest_in_use(srv)
    good = policy_doc()
    good["policies"][-1]["ttl"] = 55
    _replace(srv.policy, good)
    r = _run("reload", "--pidfile", srv.pidfile)
    assert r.returncode == 0, r.stderr
    after = _digest_in_use(srv)
    assert after != before and after in r.stdout and before in r.stdout
    # the command returns only once the workers serve the new policy
    for dummy in range(20):
        assert query("www.example.com", "A", srv.port).answer[0].ttl == 55
    bad = policy_doc()
    bad["zones"]["pro.example"]["hostnames"] = ["a..b"]
    _replace(srv.policy, bad)
    r = _run("reload", "--pidfile", srv.pidfile)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and "zones[pro.example.].hostnames[0]" in r.stderr, r.stderr
    assert after in r.stderr  # says what is still served
    assert query("www.example.com", "A", srv.port).answer[0].ttl == 55
    _replace(srv.policy, "[" * 100000)
    r = _run("reload", "--pidfile", srv.pidfile)
    assert r.returncode == 1 and "nests deeper" in r.stderr and "Traceback" not in r.stderr
    assert query("www.example.com", "A", srv.port, tcp=True).answer[0].ttl == 55
    assert _digest_in_use(srv) == after and srv.proc.poll() is None


def test_reload_command_fails_without_a_server(make_server, tmp_path):
    srv = make_server()
    srv.stop()
    pidfile = str(tmp_path / "stale.pid")
    with open(pidfile, "w") as handle:
        handle.write("%d\n" % srv.proc.pid)  # a pid that is gone
    r = _run("reload", "--pidfile", pidfile)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    r = _run("reload", "--pidfile", str(tmp_path / "missing.pid"))
    assert r.returncode == 1 and "missing.pid" in r.stderr


def test_sd_notify_ready_and_reloading(make_server, tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    srv = make_server()
    msgs = [sock.recv(4096).decode()]
    assert msgs[0].startswith("READY=1")
    # the sockets are open and the policy loaded before READY=1: a query right now works
    assert query("www.example.com", "A", srv.port).answer
    srv.hup()
    msgs = [sock.recv(4096).decode(), sock.recv(4096).decode()]
    assert msgs[0].startswith("RELOADING=1") and "MONOTONIC_USEC=" in msgs[0], msgs
    assert msgs[1].startswith("READY=1"), msgs
    _replace(srv.policy, "{")
    srv.hup()
    msgs = [sock.recv(4096).decode(), sock.recv(4096).decode()]
    assert msgs[0].startswith("RELOADING=1") and msgs[1].startswith("READY=1")
    assert "failed" in msgs[1]  # STATUS= says the reload failed
    srv.proc.send_signal(signal.SIGTERM)
    assert sock.recv(4096).decode().startswith("STOPPING=1")
    srv.proc.wait(10)
    sock.close()
    time.sleep(0)
