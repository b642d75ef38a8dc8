"""The metrics endpoint (issue 11, defect 5): concurrent, timeouts, bounded labels."""

import http.client
import socket
import time
import urllib.request

import dns.message
import dns.query

from agility_runtime.dns import metrics_http, stats as statsmod
from dns_helpers import query


def test_idle_connection_does_not_block_scrapes(server):
    # the old endpoint served one connection at a time without a timeout: this hung
    idle = socket.create_connection(("127.0.0.1", server.metrics_port))
    half = socket.create_connection(("127.0.0.1", server.metrics_port))
    half.sendall(b"GET /metr")
    try:
        for dummy in range(3):
            url = "http://127.0.0.1:%d/metrics" % server.metrics_port
            with urllib.request.urlopen(url, timeout=3) as r:
                assert b"agility_dns_workers 1" in r.read()
    finally:
        idle.close()
        half.close()


def test_read_timeout_and_client_cap():
    srv = metrics_http.start((socket.AF_INET, "127.0.0.1", 0), lambda: "up 1\n", timeout=0.5, max_clients=2)
    port = srv.server_address[1]
    try:
        held = [socket.create_connection(("127.0.0.1", port), timeout=3) for dummy in range(2)]
        time.sleep(0.1)
        extra = socket.create_connection(("127.0.0.1", port), timeout=3)
        assert extra.recv(10) == b""  # both handler slots busy: refused, not queued
        extra.close()
        start = time.monotonic()
        for s in held:  # the read timeout frees them
            assert s.recv(10) == b""
            s.close()
        assert time.monotonic() - start < 2.0
        # the handler threads release their slots just after closing: allow them a moment
        deadline = time.monotonic() + 3
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=3) as r:
                    assert r.read() == b"up 1\n"
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        srv.shutdown()
        srv.server_close()


def test_qtype_label_is_from_a_fixed_set(server):
    # the old page grew a series per query type a client chose
    for rdtype in range(1000, 1030):
        dns.query.udp(dns.message.make_query("www.example.com", rdtype), "127.0.0.1", port=server.port, timeout=2)
    text = server.metrics()
    assert 'qtype="TYPE10' not in text
    assert server.metric("agility_dns_queries_total", qtype="other", rcode="NOERROR", policy="none",
                         proto="udp") >= 30
    qtypes = {line.split('qtype="')[1].split('"')[0] for line in text.splitlines()
              if line.startswith("agility_dns_queries_total{")}
    assert qtypes <= statsmod.QTYPES | {"other"}


def test_proto_label_and_open_connection_gauge(server):
    labels = dict(qtype="A", rcode="NOERROR", policy="free")
    udp0 = server.metric("agility_dns_queries_total", proto="udp", **labels)
    tcp0 = server.metric("agility_dns_queries_total", proto="tcp", **labels)
    query("p1.example.com", "A", server.port)
    query("p2.example.com", "A", server.port, tcp=True)
    query("p3.example.com", "A", server.port, tcp=True)
    assert server.metric("agility_dns_queries_total", proto="udp", **labels) == udp0 + 1
    assert server.metric("agility_dns_queries_total", proto="tcp", **labels) == tcp0 + 2
    assert "# TYPE agility_dns_tcp_open_connections gauge" in server.metrics()


def test_snapshots_fold_qtypes_and_a_dead_workers_gauge():
    s = statsmod.Stats("tcp")
    s.queries[("TYPE1234", "NOERROR", "none")] += 2
    s.queries[("TYPE999", "NOERROR", "none")] += 3
    s.queries[("AAAA", "NOERROR", "free")] += 1
    s.tcp_open = 5
    live = statsmod.Stats("udp")
    live.tcp_open = 0
    merged = statsmod.merge([statsmod.retired(s.snapshot()), live.snapshot()])
    assert merged["queries"] == {("other", "NOERROR", "none", "tcp"): 5, ("AAAA", "NOERROR", "free", "tcp"): 1}
    assert merged["tcp_open"] == 0
    assert statsmod.merge([s.snapshot(), s.snapshot()])["tcp_open"] == 10


def test_a_workers_counter_table_stays_bounded_under_random_qtypes():
    """Folding happens when a query is counted: 2,000 distinct query types leave the
    worker's own table (not only the rendered page) at the fixed label set."""
    import json as jsonmod

    from agility_runtime.dns import handler, state as statemod
    from dns_helpers import policy_doc

    state = statemod.from_bytes(jsonmod.dumps(policy_doc()).encode())
    stats = statsmod.Stats("udp")
    for rdtype in range(300, 2300):
        wire = dns.message.make_query("www.example.com", rdtype).to_wire()
        handler.handle(state, wire, ("192.0.2.1", 5300), None, stats, 1232)
    qtypes = {key[0] for key in stats.queries}
    assert qtypes <= statsmod.QTYPES | {"other"}
    assert len(stats.queries) <= 3
