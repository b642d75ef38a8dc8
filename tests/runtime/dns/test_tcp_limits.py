"""TCP limits against the real server: slowloris, message deadline, idle eviction,
per-source cap, the open-connections gauge (issue 11, defect 2)."""

import socket
import threading
import time

import dns.message

from dns_helpers import read_frame, tcp_frame


def _query_wire(name="a.example.com"):
    return dns.message.make_query(name, "A").to_wire()


def _connect(port, source="127.0.0.1", timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _closed_by_server(sock):
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def _fresh_query(port, timeout=2.0):
    """One query on a new connection: True if answered within ``timeout``."""
    try:
        with _connect(port, timeout=timeout) as s:
            q = _query_wire()
            s.sendall(tcp_frame(q))
            resp = read_frame(s)
            return resp is not None and resp[:2] == q[:2]
    except OSError:
        return False


def _slowloris(port, sources, per_source, stop):
    """Hold connections that send the next byte of a query every 0.2 s; reconnect when closed."""
    conns = []  # [socket, source, bytes sent]
    frame = tcp_frame(_query_wire())

    def fill():
        for src in sources:
            while sum(1 for c in conns if c[1] == src) < per_source:
                try:
                    conns.append([_connect(port, src, timeout=0.5), src, 0])
                except OSError:
                    return
    while not stop.is_set():
        fill()
        for conn in list(conns):
            try:
                conn[0].send(frame[conn[2] % len(frame):][:1])
                conn[2] += 1
            except OSError:
                conn[0].close()
                conns.remove(conn)
        stop.wait(0.2)
    for conn in conns:
        conn[0].close()


def test_slowloris_does_not_starve_fresh_queries(make_server):
    # 8 slots, 12 slowloris connections from 4 sources: on the old code (idle timer reset by
    # every byte, the 9th connection closed at once) no fresh TCP query got an answer
    srv = make_server(args=("--tcp-max-conns", "8", "--tcp-timeout", "5"), v6=False)
    stop = threading.Event()
    attack = threading.Thread(target=_slowloris,
                              args=(srv.port, ["127.0.0.%d" % i for i in range(2, 6)], 3, stop))
    attack.start()
    try:
        time.sleep(0.5)
        answered = 0
        for dummy in range(8):
            # generous timeout for a loaded CI machine: the old code closed them at once
            answered += _fresh_query(srv.port, timeout=5.0)
            time.sleep(0.1)
    finally:
        stop.set()
        attack.join()
    assert answered == 8
    assert srv.metric("agility_dns_tcp_closed_total", reason="message_timeout") >= 8


def test_message_deadline_despite_trickle(make_server):
    srv = make_server(args=("--tcp-msg-timeout", "0.5", "--tcp-timeout", "5"), v6=False)
    frame = tcp_frame(_query_wire())
    with _connect(srv.port, timeout=0.1) as s:
        start = time.monotonic()
        closed_after = None
        for i in range(40):  # one byte per 0.1 s for up to 4 s (the old code kept it open)
            try:
                s.send(frame[i % len(frame):i % len(frame) + 1])
                if s.recv(10) == b"":
                    closed_after = time.monotonic() - start
                    break
            except socket.timeout:
                continue
            except OSError:
                closed_after = time.monotonic() - start
                break
    assert closed_after is not None and 0.4 <= closed_after < 1.5
    assert srv.metric("agility_dns_tcp_closed_total", reason="message_timeout") == 1


def test_longest_idle_connection_makes_room(make_server):
    srv = make_server(args=("--tcp-max-conns", "4", "--tcp-timeout", "30"), v6=False)
    held = []
    for dummy in range(4):
        held.append(_connect(srv.port))
        time.sleep(0.05)
    try:
        held[1].sendall(tcp_frame(_query_wire()))  # held[1] was busy last: idle since later
        assert read_frame(held[1]) is not None
        assert _fresh_query(srv.port)              # the 5th takes the slot of held[0]
        assert _closed_by_server(held[0])
        for s in held[1:]:
            s.sendall(tcp_frame(_query_wire()))
            assert read_frame(s) is not None
    finally:
        for s in held:
            s.close()
    assert srv.metric("agility_dns_tcp_closed_total", reason="evicted_idle") == 1


def test_busy_slots_make_a_newcomer_wait_not_fail(make_server):
    # all 2 slots mid-message: the newcomer waits in the accept queue until a message
    # deadline frees a slot (about 0.5 s), then is answered
    srv = make_server(args=("--tcp-max-conns", "2", "--tcp-timeout", "30"), v6=False)
    held = [_connect(srv.port, "127.0.0.%d" % i) for i in (2, 3)]
    try:
        for s in held:
            s.send(b"\x00")
        time.sleep(0.1)
        start = time.monotonic()
        assert _fresh_query(srv.port, timeout=3.0)
        assert time.monotonic() - start < 1.5
    finally:
        for s in held:
            s.close()


def test_per_source_cap(make_server):
    srv = make_server(args=("--tcp-max-per-source", "2"), v6=False)
    held = [_connect(srv.port) for dummy in range(2)]
    try:
        third = _connect(srv.port)
        assert _closed_by_server(third)
        third.close()
        assert _fresh_query_from(srv.port, "127.0.0.2")  # another source is served
        held[0].sendall(tcp_frame(_query_wire()))
        assert read_frame(held[0]) is not None
    finally:
        for s in held:
            s.close()
    assert srv.metric("agility_dns_tcp_closed_total", reason="per_source_limit") == 1


def _fresh_query_from(port, source):
    with _connect(port, source) as s:
        s.sendall(tcp_frame(_query_wire()))
        return read_frame(s) is not None


def test_open_connections_gauge(make_server):
    srv = make_server(v6=False)
    held = [_connect(srv.port) for dummy in range(3)]
    try:
        time.sleep(0.2)
        assert srv.metric("agility_dns_tcp_open_connections") == 3
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 3
    while srv.metric("agility_dns_tcp_open_connections") != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.metric("agility_dns_tcp_open_connections") == 0
