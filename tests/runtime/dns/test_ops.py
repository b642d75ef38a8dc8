"""Operations: check-config, reload (SIGHUP and command, under load), metrics, logs,
dig, workers, systemd socket activation, privilege drop, reply source address."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from dns_helpers import AGILITY_DNS, free_port, policy_doc, query, wait_until, write_doc


def run(*args, **kw):
    return subprocess.run([AGILITY_DNS] + list(args), capture_output=True, text=True, timeout=30, check=False, **kw)


def bad_rdata_doc():
    doc = policy_doc()
    doc["zones"]["example.com"]["records"].append({"name": "mx2", "type": "MX", "data": "ten mail"})
    return doc


def test_check_config(tmp_path):
    good = write_doc(tmp_path / "good.json", policy_doc())
    r = run("--check-config", good)
    assert r.returncode == 0 and "ok" in r.stdout
    r = run("--check-config", write_doc(tmp_path / "bad.json", bad_rdata_doc()))
    assert r.returncode == 1 and "mx2.example.com. MX" in r.stderr and "ten mail" in r.stderr
    doc = policy_doc()
    doc["policies"][0]["ttl"] = 0
    r = run("--check-config", write_doc(tmp_path / "bad2.json", doc))
    assert r.returncode == 1 and "ttl" in r.stderr
    (tmp_path / "junk.json").write_text("{not json")
    r = run("--check-config", str(tmp_path / "junk.json"))
    assert r.returncode == 1 and "not valid JSON" in r.stderr
    r = run("--check-config", str(tmp_path / "missing.json"))
    assert r.returncode == 1 and "cannot read" in r.stderr
    doc = policy_doc()
    doc["zones"]["example.com"]["records"].append({"name": "alias", "type": "TXT", "data": "\"x\""})
    r = run("--check-config", write_doc(tmp_path / "cname.json", doc))
    assert r.returncode == 1 and "CNAME" in r.stderr


def test_start_refuses_bad_file(tmp_path):
    r = run("--policy", write_doc(tmp_path / "bad.json", bad_rdata_doc()), "--listen", "127.0.0.1:%d" % free_port())
    assert r.returncode == 1 and "event=start" in r.stderr and "result=failed" in r.stderr


def test_reload_sighup_command_and_bad_file(make_server):
    srv = make_server()
    digest0 = re.search(r"digest=(\w+)", srv.logtext()).group(1)
    assert query("www.example.com", "A", srv.port).answer[0].ttl == 300
    doc = policy_doc()
    doc["policies"][-1]["ttl"] = 77
    write_doc(srv.policy + ".tmp", doc)
    os.rename(srv.policy + ".tmp", srv.policy)
    r = run("reload", "--pidfile", srv.pidfile)
    assert r.returncode == 0
    assert wait_until(lambda: query("www.example.com", "A", srv.port).answer[0].ttl == 77)
    assert srv.metric("agility_dns_reloads_total", result="ok") == 1
    info = [l for l in srv.metrics().splitlines() if l.startswith("agility_dns_policy_info")][0]
    assert digest0 not in info
    digest1 = re.search(r'digest="(\w+)"', info).group(1)
    # a bad file: one clear log line, nothing changes
    write_doc(srv.policy, bad_rdata_doc())
    srv.hup()
    assert wait_until(lambda: "result=failed" in srv.logtext())
    line = [l for l in srv.logtext().splitlines() if "event=reload" in l and "result=failed" in l]
    assert len(line) == 1 and "ten mail" in line[0] and ("digest_in_use=%s" % digest1) in line[0]
    assert query("www.example.com", "A", srv.port).answer[0].ttl == 77
    assert query("mx2.example.com", "MX", srv.port).rcode() == dns.rcode.NOERROR  # wildcard zone, no MX
    assert srv.metric("agility_dns_reloads_total", result="failed") == 1
    assert srv.metric("agility_dns_last_reload_success") == 0
    assert ('digest="%s"' % digest1) in srv.metrics()


def test_reload_under_load_loses_no_query(make_server):
    srv = make_server(args=("--workers", "2"))
    stop = threading.Event()
    counts = {"sent": 0, "ok": 0, "ttls": set(), "errors": []}
    lock = threading.Lock()

    def client(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        s.connect(("127.0.0.1", srv.port))
        i = 0
        while not stop.is_set():
            q = dns.message.make_query("load%d-%d.example.com" % (n, i), "A")
            i += 1
            with lock:
                counts["sent"] += 1
            s.send(q.to_wire())
            try:
                r = dns.message.from_wire(s.recv(4096))
            except socket.timeout:
                with lock:
                    counts["errors"].append("timeout %d" % i)
                continue
            if r.id == q.id and r.rcode() == 0 and r.answer:
                with lock:
                    counts["ok"] += 1
                    counts["ttls"].add(r.answer[0].ttl)
            else:
                with lock:
                    counts["errors"].append(str(r))
        s.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.7)
    doc = policy_doc()
    doc["policies"][-1]["ttl"] = 99
    write_doc(srv.policy, doc)
    srv.hup()
    assert wait_until(lambda: srv.metric("agility_dns_reloads_total", result="ok") == 1)
    time.sleep(0.7)
    write_doc(srv.policy, bad_rdata_doc())
    srv.hup()
    assert wait_until(lambda: srv.metric("agility_dns_reloads_total", result="failed") == 1)
    time.sleep(0.7)
    stop.set()
    for t in threads:
        t.join()
    assert counts["errors"] == []
    assert counts["sent"] == counts["ok"] and counts["sent"] > 500
    assert counts["ttls"] == {300, 99}
    assert query("x.example.com", "A", srv.port).answer[0].ttl == 99  # the bad file changed nothing


def test_metrics_counts(server):
    m0 = server.metric("agility_dns_queries_total", qtype="A", rcode="NOERROR", policy="free", proto="udp")
    p0 = server.metric("agility_dns_answers_total", prefix="198.18.16.0/20")
    n0 = server.metric("agility_dns_queries_total", qtype="A", rcode="NXDOMAIN", policy="none", proto="udp")
    d0 = server.metric("agility_dns_answers_total", prefix="198.18.128.0/24")
    for i in range(25):
        query("m%d.example.com" % i, "A", server.port)
    query("nope.pro.example", "A", server.port)
    query("d.diverse.example", "A", server.port, tcp=True)
    assert server.metric("agility_dns_queries_total", qtype="A", rcode="NOERROR", policy="free", proto="udp") == m0 + 25
    assert server.metric("agility_dns_answers_total", prefix="198.18.16.0/20") == p0 + 26
    assert server.metric("agility_dns_answers_total", prefix="198.18.128.0/24") == d0 + 1
    assert server.metric("agility_dns_queries_total", qtype="A", rcode="NXDOMAIN", policy="none", proto="udp") == n0 + 1
    text = server.metrics()
    for name in ("agility_dns_reloads_total", "agility_dns_policy_info", "agility_dns_workers",
                 "agility_dns_tcp_connections_total", "agility_dns_truncated_total",
                 "agility_dns_policy_loaded_timestamp_seconds"):
        assert "# TYPE %s " % name in text
    digest = run("--check-config", server.policy).stdout.split("digest ")[1].split(",")[0]
    assert 'agility_dns_policy_info{digest="%s",pop="lhr01"' % digest in text


def test_structured_logs(make_server):
    srv = make_server(args=("--log-format", "json"))
    lines = [json.loads(l) for l in srv.logtext().splitlines() if l.strip()]
    ready = [l for l in lines if l["event"] == "ready"][0]
    assert ready["level"] == "info" and ready["workers"] == 1 and "udp:127.0.0.1:%d" % srv.port in ready["listen"]


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig not installed")
def test_dig(server):
    def dig(*args):
        return subprocess.run(["dig", "-p", str(server.port)] + list(args), capture_output=True, text=True,
                              timeout=10, check=False).stdout
    out = dig("@127.0.0.1", "+short", "www.example.com", "A")
    assert re.fullmatch(r"198\.18\.(1[6-9]|2\d|3[01])\.\d+\n", out)
    out = dig("@::1", "+short", "+tcp", "www.example.com", "AAAA")
    assert out.startswith("2001:db8:16:0:")
    out = dig("@127.0.0.1", "nope.pro.example", "A")
    assert "status: NXDOMAIN" in out and "flags: qr aa rd;" in out and "pro.example.\t\t60\tIN\tSOA" in out
    out = dig("@127.0.0.1", "+norecurse", "example.org", "A")
    assert "status: REFUSED" in out
    out = dig("@127.0.0.1", "+ignore", "+noedns", "big.example.com", "TXT")
    assert re.search(r"flags: qr[a-z ]* tc[ ;]", out) or re.search(r"flags:[a-z ]* tc [a-z ]*;", out)
    out = dig("@127.0.0.1", "+noedns", "big.example.com", "TXT")  # dig retries over TCP itself
    assert "status: NOERROR" in out and "ANSWER: 1" in out
    out = dig("@127.0.0.1", "+edns=1", "+noednsneg", "www.example.com", "A")
    assert "status: BADVERS" in out


def _worker_pids(srv):
    return [int(p) for p in re.search(r"pids=([\d,]+)", srv.logtext()).group(1).split(",")]


def test_workers_share_load_and_restart(make_server):
    srv = make_server(args=("--workers", "2"))
    assert srv.metric("agility_dns_workers") == 2
    pids = _worker_pids(srv)
    assert len(pids) == 2
    for i in range(40):  # different source ports spread over the SO_REUSEPORT group
        query("w%d.example.com" % i, "A", srv.port)
    before = srv.metric("agility_dns_queries_total", qtype="A", rcode="NOERROR", policy="free", proto="udp")
    assert before >= 40
    os.kill(pids[0], signal.SIGKILL)
    assert wait_until(lambda: "event=worker_started" in srv.logtext())
    for i in range(20):
        assert query("after%d.example.com" % i, "A", srv.port).answer
    assert srv.metric("agility_dns_worker_restarts_total") == 1
    assert srv.metric("agility_dns_workers") == 2
    # counts of the dead worker up to the last scrape are kept
    assert srv.metric("agility_dns_queries_total", qtype="A", rcode="NOERROR", policy="free", proto="udp") >= before + 20


def test_sigterm_stops_cleanly(make_server):
    srv = make_server(args=("--workers", "2"))
    pids = _worker_pids(srv)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(5) == 0
    assert not os.path.exists(srv.pidfile)
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or "Z" in open("/proc/%d/stat" % pid).read().split()[2]


def test_systemd_socket_activation(tmp_path):
    port = free_port()
    policy_path = write_doc(tmp_path / "p.json", policy_doc())
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp.bind(("::1", port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", port))
    tcp.listen(16)
    # what systemd does: fds 3.. in order, LISTEN_PID = the exec'd process
    wrapper = textwrap.dedent("""
        import os, sys
        fds = [int(x) for x in sys.argv[1].split(",")]
        for i, fd in enumerate(fds):
            os.dup2(fd, 3 + i)
        os.environ["LISTEN_FDS"] = str(len(fds))
        os.environ["LISTEN_PID"] = str(os.getpid())
        os.execv(sys.argv[2], sys.argv[2:])
    """)
    log = open(tmp_path / "log", "w+")
    proc = subprocess.Popen([sys.executable, "-c", wrapper, "%d,%d" % (udp.fileno(), tcp.fileno()),
                             AGILITY_DNS, "--policy", policy_path],
                            pass_fds=(udp.fileno(), tcp.fileno()), stdout=log, stderr=log)
    try:
        udp.close()
        tcp.close()
        assert wait_until(lambda: "event=ready" in open(tmp_path / "log").read())
        r = query("sa.example.com", "A", port, host="::1")
        assert r.answer
        r = query("sa.example.com", "A", port, host="127.0.0.1", tcp=True)
        assert r.answer
        text = open(tmp_path / "log").read()
        assert "udp:[::1]:%d" % port in text and "tcp:127.0.0.1:%d" % port in text
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
def test_user_drop(make_server):
    srv = make_server(args=("--user", "nobody"))
    for pid in [srv.proc.pid] + _worker_pids(srv):
        status = open("/proc/%d/status" % pid).read()
        uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)
        assert uid == str(socket.getservbyname and __import__("pwd").getpwnam("nobody").pw_uid)
        caps = re.search(r"^CapEff:\s+(\w+)", status, re.M).group(1)
        assert int(caps, 16) == 0
    assert query("u.example.com", "A", srv.port).answer


NETNS_SCRIPT = textwrap.dedent("""
    import subprocess, sys, time, socket, json
    import dns.message
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    agility, policy, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    srv = subprocess.Popen([agility, "--policy", policy, "--listen", "0.0.0.0:%d" % port],
                           stderr=subprocess.DEVNULL)
    out = {}
    try:
        for dst in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            for attempt in range(50):
                s.sendto(dns.message.make_query("x.local.example", "A").to_wire(), (dst, port))
                try:
                    data, src = s.recvfrom(4096)
                    break
                except socket.timeout:
                    continue
            out[dst] = [src[0], dns.message.from_wire(data).answer[0][0].address]
    finally:
        srv.terminate()
        srv.wait()
    print(json.dumps(out))
""")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_reply_source_is_query_destination_and_local_policy(tmp_path):
    """In a private network namespace (only lo): a socket bound to 0.0.0.0 answers queries
    sent to 127.0.0.2 from 127.0.0.2 (IP_PKTINFO), and the local-address policy sees it."""
    policy_path = write_doc(tmp_path / "p.json", policy_doc())
    script = tmp_path / "ns.py"
    script.write_text(NETNS_SCRIPT)
    r = subprocess.run(["unshare", "--net", sys.executable, str(script), AGILITY_DNS, policy_path, "5300"],
                       capture_output=True, text=True, timeout=60, check=False)
    if r.returncode != 0 and "unshare" in r.stderr:
        pytest.skip("unshare failed: %s" % r.stderr)
    out = json.loads(r.stdout)
    for dst in out:
        assert out[dst][0] == dst  # the reply left from the address the query went to
    assert out["127.0.0.2"][1] == "198.18.64.0"
    assert out["127.0.0.1"][1] != "198.18.64.0" and out["127.0.0.3"][1] != "198.18.64.0"
