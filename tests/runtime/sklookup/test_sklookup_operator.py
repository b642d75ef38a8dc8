"""Operator surface of agility-lookup: --version, bind output, bindings filters,
register by protocol/address/port from a pid, and the metrics page and HTTP endpoint."""
import http.client
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from .conftest import CLI, probe

pytestmark = pytest.mark.root

V4 = "198.18.0.0/20"


def _one_line_error(r):
    assert r.rc == 1, (r.rc, r.out, r.err)
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agility-lookup: error: "), r.err
    return lines[0]


def test_version_is_the_installed_package_version():
    from importlib.metadata import version
    r = subprocess.run(CLI + ["--version"], stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert r.stdout.strip() == "agility-lookup %s" % version("agility-runtime")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "..", "runtime", "pyproject.toml")) as f:
        declared = re.search(r'(?m)^version = "([^"]+)"', f.read()).group(1)
    assert r.stdout.strip().endswith(" " + declared)


def test_bind_prints_the_cli_format(lab):
    lab.load()
    r = lab.ok("bind", "web", "tcp", V4, 80)
    assert r.out.strip() == "bound tcp %s port 80 -> web" % V4
    r = lab.ok("bind", "dns", "udp", "2001:db8::/48", 0)
    assert r.out.strip() == "bound udp 2001:db8::/48 port any -> dns"
    assert "Binding(" not in r.out
    assert lab.ok("bind", "dns", "udp", "2001:db8::/48", 0).out.strip() == "unchanged"


from .test_binding_view import SET, _keys


def test_bindings_filters_in_the_cli(lab):
    # The filter semantics are tested on the pure function (test_binding_view.py);
    # here: the options reach it, and text/JSON/errors come out as the CLI's own.
    lab.load()
    lab.load_bindings(SET)
    got = lab.ok("bindings", "--json", "--protocol", "TCP", "--prefix", "198.18.0.9", "--port", "443").json
    assert _keys(got["bindings"]) == _keys([SET[0], SET[1]])
    text = lab.ok("bindings", "--label", "web").out.splitlines()
    assert len(text) == 3 and text[0].split() == ["PROTO", "PREFIX", "PORT", "LABEL"]
    assert "invalid --prefix" in _one_line_error(lab.cli("bindings", "--prefix", "198.18.0.1/24"))


# ---- register by protocol, address and port -------------------------------------

def test_register_picks_socket_by_protocol_address_port(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "web", "tcp", V4, 0)
    lab.ok("bind", "dns", "udp", V4, 53)
    web = lab.listener("tcp", 4, addr="127.0.0.1")
    port = web.getsockname()[1]
    other = lab.listener("tcp", 4, addr="127.0.0.2", port=port)   # same port, other address
    udp = lab.listener("udp", 4, addr="127.0.0.1", port=port)      # same address and port, UDP
    # Not registrable, so never candidates: an accepted connection on web's address and
    # port, and a dup of web (the same socket under a second fd).
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _peer = web.accept()
    dup = os.dup(web.fileno())
    try:
        r = lab.ok("register", "web", "--pid", os.getpid(), "--protocol", "tcp",
                   "--address", "127.0.0.1", "--port", port, "--json").json
        assert r["registered"] == [{"label": "web", "fd": r["registered"][0]["fd"], "domain": "ipv4",
                                    "protocol": "tcp", "local": "127.0.0.1 port %d" % port,
                                    "pid": os.getpid(), "pid_fd": web.fileno()}]
        text = lab.ok("register", "dns", "--pid", os.getpid(), "--protocol", "udp",
                      "--address", "127.0.0.1", "--port", port).out
        assert text.strip() == "registered dns udp/ipv4 127.0.0.1 port %d (pid %d fd %d)" % (
            port, os.getpid(), udp.fileno())
    finally:
        os.close(dup)
        client.close()
        accepted.close()
    assert probe(lab, "tcp", "198.18.3.3", 8080, [web, other, udp]) == 0
    assert probe(lab, "udp", "198.18.3.3", 53, [web, other, udp]) == 2
    dests = {(d["label"], d["protocol"]): d["socket"] for d in lab.ok("status", "--json").json["destinations"]}
    assert dests == {("web", "tcp"): True, ("dns", "udp"): True}


def test_register_by_pid_errors_are_one_line_and_change_nothing(lab):
    lab.route(V4)
    lab.load()
    lab.ok("bind", "web", "tcp", V4, 0)
    lab.ok("bind", "web", "tcp", "2001:db8::/48", 0)
    a = lab.listener("tcp", 4, addr="127.0.0.1", reuseport=True)
    port = a.getsockname()[1]
    lab.listener("tcp", 4, addr="127.0.0.1", port=port, reuseport=True)  # a SO_REUSEPORT twin
    lab.listener("tcp", 6, addr="::1", port=port)
    free = lab.listener("udp", 4, addr="127.0.0.1")
    free_port = free.getsockname()[1]
    free.close()  # nothing listens on free_port any more
    pid = os.getpid()
    msg = _one_line_error(lab.cli("register", "web", "--pid", pid, "--protocol", "tcp",
                                  "--address", "127.0.0.1", "--port", port))
    assert "2 sockets of pid %d match" % pid in msg and "SO_REUSEPORT" in msg
    msg = _one_line_error(lab.cli("register", "web", "--pid", pid, "--port", port))
    assert "3 sockets" in msg
    msg = _one_line_error(lab.cli("register", "web", "--pid", pid, "--protocol", "udp", "--port", free_port))
    assert "has no listening TCP or bound UDP socket" in msg and "port %d" % port in msg
    msg = _one_line_error(lab.cli("register", "web", "--pid", pid, "--address", "not-an-ip"))
    assert "invalid --address" in msg
    dead = subprocess.Popen(["true"])
    dead.wait()
    _one_line_error(lab.cli("register", "web", "--pid", dead.pid, "--port", port))
    msg = _one_line_error(lab.cli("register", "web", "--port", port))  # selectors without --pid
    assert "--pid" in msg
    # Nothing was registered; the IPv6 socket alone is a unique pick.
    assert not any(d["socket"] for d in lab.ok("status", "--json").json["destinations"])
    lab.ok("register", "web", "--pid", pid, "--address", "::1")
    assert [d["domain"] for d in lab.ok("status", "--json").json["destinations"] if d["socket"]] == ["ipv6"]


# ---- metrics ---------------------------------------------------------------------

def _series(page):
    return [line for line in page.splitlines() if line and not line.startswith("#")]


def _value(page, name, **labels):
    want = "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in labels.items()))
    got = [line.rsplit(" ", 1)[1] for line in _series(page) if line.split(" ", 1)[0] == want]
    assert len(got) == 1, (want, got)
    return int(got[0])


def test_metrics_default_is_per_label_and_does_not_grow_with_bindings(lab):
    lab.route(V4)
    lab.load()
    many = [{"protocol": "tcp", "prefix": "198.18.%d.%d/32" % (i // 256, i % 256), "port": 80, "label": "many"}
            for i in range(600)]
    lab.load_bindings([{"protocol": "tcp", "prefix": V4, "port": 0, "label": "wide"}] + many[:2])
    small = lab.ok("metrics", "--no-addresses").out
    lab.load_bindings([{"protocol": "tcp", "prefix": V4, "port": 0, "label": "wide"}] + many)
    web = lab.listener("tcp", 4)
    lab.register("many", web)
    for addr in ("198.18.0.1", "198.18.1.7", "198.18.2.0"):
        assert probe(lab, "tcp", addr, 80, [web]) == 0
    for dummy in range(2):  # "wide" has no socket: dropped, counted
        with pytest.raises(OSError):
            socket.create_connection(("198.18.9.9", 81), timeout=2).close()
    page = lab.ok("metrics", "--no-addresses").out
    assert len(_series(page)) == len(_series(small))  # same series, only values differ
    assert "agility_lookup_binding_" not in page
    assert _value(page, "agility_lookup_label_lookups_total", label="many") == 3
    assert _value(page, "agility_lookup_label_bindings", label="many") == 600
    assert _value(page, "agility_lookup_label_sockets", label="many") == 1
    assert _value(page, "agility_lookup_label_drops_total", label="wide", reason="missing_socket") == 2
    assert _value(page, "agility_lookup_label_lookups_total", label="wide") == 2
    full = lab.ok("metrics", "--per-binding", "--no-addresses").out
    assert len(_series(full)) == len(_series(page)) + 3 * 601
    assert _value(full, "agility_lookup_binding_lookups_total", label="many", protocol="tcp",
                  prefix="198.18.1.7/32", port=80) == 1
    assert "agility_lookup_address_" not in page
    assert _value(lab.ok("metrics").out, "agility_lookup_address_hits_total", address="198.18.1.7") == 1


class MetricsProcess(object):
    def __init__(self, lab, *extra):
        self.proc = subprocess.Popen(CLI + ["--bpffs", lab.bpffs, "metrics", "--listen", "127.0.0.1:0"]
                                     + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True)
        line = self.proc.stdout.readline()
        m = re.match(r"serving metrics on http://127\.0\.0\.1:(\d+)/metrics$", line.strip())
        assert m, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.port = int(m.group(1))

    def get(self, path="/metrics", timeout=5.0):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.getheader("Content-Type"), r.read().decode()
        finally:
            c.close()

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(10)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
        return rc


def test_metrics_http_serves_page_and_survives_idle_clients(lab):
    server = MetricsProcess(lab, "--timeout", "2")
    try:
        status, _ctype, body = server.get()
        assert status == 503 and "not loaded" in body  # started before load: scrapes say why
        lab.route(V4)
        lab.load()
        lab.ok("bind", "web", "tcp", V4, 0)
        status, ctype, body = server.get()
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        assert body == lab.ok("metrics").out
        assert server.get("/other")[0] == 404
        # Idle and dribbling clients must not block scrapes.
        idle = [socket.create_connection(("127.0.0.1", server.port)) for dummy in range(5)]
        drip = socket.create_connection(("127.0.0.1", server.port))
        stop = threading.Event()

        def dribble():
            try:
                for ch in b"GET /metrics HTTP/1.0\r\n":
                    if stop.wait(0.3):
                        return
                    drip.send(bytes([ch]))
            except OSError:
                pass
        t = threading.Thread(target=dribble)
        t.start()
        results = []

        def scrape():
            t0 = time.monotonic()
            results.append((server.get(timeout=3)[0], time.monotonic() - t0))
        scrapers = [threading.Thread(target=scrape) for dummy in range(8)]
        for s in scrapers:
            s.start()
        for s in scrapers:
            s.join()
        assert [r[0] for r in results] == [200] * 8
        assert max(r[1] for r in results) < 1.0, results
        # The deadline cuts off the idle and the dribbling client (2 s), each in one piece.
        t0 = time.monotonic()
        for c in idle + [drip]:
            c.settimeout(5)
            try:
                assert c.recv(1) == b""
            except ConnectionResetError:
                pass  # closed with unread bytes pending: also closed
        assert time.monotonic() - t0 < 4.0
        stop.set()
        t.join()
        for c in idle + [drip]:
            c.close()
        assert server.get()[0] == 200
    finally:
        assert server.stop() == 0


def test_metrics_listen_bad_address_is_one_line_error(lab):
    for bad in ("localhost:9100", "::1:9100"):  # the parser's cases: tests/runtime/test_inet.py
        assert "invalid --listen" in _one_line_error(lab.cli("metrics", "--listen", bad))
