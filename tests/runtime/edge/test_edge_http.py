"""agility-edge over plain TCP: answers, errors, limits (real process on loopback)."""

import socket
import time

import pytest

from edge_helpers import free_port, http_get, udp_ping


@pytest.mark.parametrize("host,hostname,path", [
    ("127.0.0.1", "www.example.com", "/"),
    ("127.0.0.1", "a.b.example", "/some/path?x=1"),
    ("::1", "v6.example.com", "/"),
])
def test_http_answer_names_pop_host_and_local(edge_factory, host, hostname, path):
    port = free_port(host=host)
    spec = "tcp:[%s]:%d" % (host, port) if ":" in host else "tcp:%s:%d" % (host, port)
    edge_factory("--pop", "lab1", "--listen", spec)
    status, doc = http_get(host, port, hostname=hostname, path=path)
    assert status == 200
    assert doc["pop"] == "lab1"
    assert doc["host"] == hostname
    assert doc["proto"] == "http"
    assert doc["tls"] is False
    assert doc["path"] == path
    want_local = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    assert doc["local"] == want_local
    assert doc["peer"].rsplit(":", 1)[0].strip("[]") == host


def test_dual_stack_listener_reports_ipv4_plainly(edge_factory):
    port = free_port(host="::")
    edge_factory("--pop", "ds", "--listen", "tcp:[::]:%d" % port)
    status, doc = http_get("127.0.0.1", port)
    assert status == 200
    assert doc["local"] == "127.0.0.1:%d" % port
    status, doc = http_get("::1", port)
    assert doc["local"] == "[::1]:%d" % port


GARBAGE = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",  # TLS hello on plain port
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    b"\xff\xfe\x00\x01\r\n\r\n",
]


@pytest.mark.parametrize("raw", GARBAGE)
def test_garbage_gets_400_and_one_log_line(edge_factory, raw):
    port = free_port()
    edge = edge_factory("--pop", "g", "--listen", "tcp:127.0.0.1:%d" % port)
    status, doc = http_get("127.0.0.1", port, raw=raw)
    assert status == 400
    assert doc == {"pop": "g", "error": "bad request"}
    time.sleep(0.2)
    assert edge.count("WARNING") == 1
    assert http_get("127.0.0.1", port)[0] == 200
    assert edge.proc.poll() is None


def test_oversized_head_and_early_close(edge_factory):
    port = free_port()
    edge = edge_factory("--pop", "g", "--listen", "tcp:127.0.0.1:%d" % port)
    status, doc = http_get("127.0.0.1", port, raw=b"GET / HTTP/1.1\r\nX: " + b"a" * 20000)
    assert status == 400
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HT")
    s.close()
    time.sleep(0.3)
    assert http_get("127.0.0.1", port)[0] == 200
    assert edge.count("larger than") == 1
    assert edge.count("connection closed before") == 1


def test_read_timeout_closes_idle_connection(edge_factory):
    port = free_port()
    edge = edge_factory("--pop", "t", "--listen", "tcp:127.0.0.1:%d" % port, "--read-timeout", "0.5")
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    start = time.monotonic()
    assert s.recv(100) == b""  # server closed on us
    assert time.monotonic() - start < 3
    s.close()
    assert edge.count("read timeout") == 1


def test_connection_limit_refuses_beyond_max_and_recovers(edge_factory):
    port = free_port()
    edge = edge_factory("--pop", "m", "--listen", "tcp:127.0.0.1:%d" % port,
                        "--max-connections", "2", "--read-timeout", "3")
    idle = [socket.create_connection(("127.0.0.1", port)) for dummy in range(2)]
    time.sleep(0.3)
    third = socket.create_connection(("127.0.0.1", port))
    third.settimeout(2)
    try:
        third.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert third.recv(100) == b""
    except ConnectionResetError:
        pass
    third.close()
    for s in idle:
        s.close()
    time.sleep(0.3)
    assert http_get("127.0.0.1", port)[0] == 200
    assert edge.count("connections open, refusing") == 1


def test_health_reports_counters(edge_factory):
    port, hport = free_port(), free_port()
    edge_factory("--pop", "h", "--listen", "tcp:127.0.0.1:%d" % port, "--health", str(hport))
    http_get("127.0.0.1", port)
    status, doc = http_get("127.0.0.1", hport)
    assert status == 200
    assert doc["status"] == "ok" and doc["pop"] == "h"
    assert doc["stats"]["http_requests"] >= 1


def test_udp_ping_v4_v6_and_garbage_ignored(edge_factory):
    port = free_port()
    port6 = free_port(host="::1")
    edge = edge_factory("--pop", "u", "--listen", "udp:127.0.0.1:%d" % port,
                        "--listen", "udp:[::1]:%d" % port6)
    doc, src = udp_ping("127.0.0.1", port, token="abc")
    assert doc["pop"] == "u" and doc["proto"] == "udp" and doc["token"] == "abc"
    assert doc["local"] == "127.0.0.1:%d" % port
    assert src == ("127.0.0.1", port)
    doc, src = udp_ping("::1", port6)
    assert doc["local"] == "[::1]:%d" % port6
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for junk in (b"", b"\x00\xff" * 100, b"PING", b"pingX"):
        s.sendto(junk, ("127.0.0.1", port))
    s.close()
    time.sleep(0.3)
    assert edge.count("ignored datagram", at_least=4) == 4
    assert udp_ping("127.0.0.1", port)[0]["pop"] == "u"


@pytest.mark.parametrize("args,needle", [
    (["--listen", "tcp:localhost:80"], "not an IP address"),
    (["--listen", "sctp:127.0.0.1:80"], "expected KIND:ADDR:PORT"),
    (["--listen", "tcp:127.0.0.1:99999"], "bad port"),
    (["--listen", "tls:127.0.0.1:0"], "need --tls-cert"),
    ([], "no sockets"),
])
def test_bad_command_lines_exit_2(args, needle):
    import subprocess
    from edge_helpers import EDGE
    r = subprocess.run(EDGE + ["--pop", "x"] + args, capture_output=True, text=True, timeout=20, check=False)
    assert r.returncode == 2
    assert needle in r.stderr


def test_sigterm_exits_zero(edge_factory):
    port = free_port()
    edge = edge_factory("--pop", "s", "--listen", "tcp:127.0.0.1:%d" % port)
    assert edge.stop() == 0
