"""TCP: one selector loop per worker for all TCP listeners.

Length-prefixed messages (RFC 1035 4.2.2 / RFC 7766); several queries pipelined on
one connection are answered in order; idle connections close after ``timeout``
seconds; at most ``max_conns`` connections per worker (more are closed at once);
a client that does not read its responses is paused once 256 KiB are queued.
"""

import selectors
import socket
import time

from agility_runtime.dns import handler

_OUT_LIMIT = 256 * 1024


class _Conn:
    __slots__ = ("sock", "peer", "local", "inbuf", "out", "last", "eof")

    def __init__(self, sock, peer, local, now):
        self.sock = sock
        self.peer = peer
        self.local = local
        self.inbuf = bytearray()
        self.out = bytearray()
        self.last = now
        self.eof = False


def serve(listeners, holder, stats, udp_max, timeout=10.0, max_conns=256):
    sel = selectors.DefaultSelector()
    for lsock in listeners:
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ, None)
    conns = {}

    def close(conn):
        try:
            sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conns.pop(conn.sock, None)
        try:
            conn.sock.close()
        except OSError:
            pass

    def want(conn):
        events = 0
        if not conn.eof and len(conn.out) < _OUT_LIMIT:
            events |= selectors.EVENT_READ
        if conn.out:
            events |= selectors.EVENT_WRITE
        if not events:
            close(conn)
            return
        try:
            sel.modify(conn.sock, events, conn)
        except (KeyError, ValueError):
            pass

    def process(conn):
        buf = conn.inbuf
        while len(buf) >= 2 and len(conn.out) < _OUT_LIMIT:
            length = (buf[0] << 8) | buf[1]
            if length == 0:
                stats.dropped["tcp_empty_message"] += 1
                conn.eof = True
                buf.clear()
                return
            if len(buf) < 2 + length:
                return
            msg = bytes(buf[2:2 + length])
            del buf[:2 + length]
            resp = handler.handle(holder.state, msg, conn.peer, conn.local, stats, udp_max, tcp=True)
            if resp is not None:
                conn.out += len(resp).to_bytes(2, "big")
                conn.out += resp

    def flush(conn):
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                close(conn)
                return
            del conn.out[:sent]

    next_sweep = time.monotonic() + 1.0
    while True:
        events = sel.select(timeout=1.0)
        now = time.monotonic()
        for key, mask in events:
            if key.data is None:
                while True:
                    try:
                        csock, peer = key.fileobj.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    if len(conns) >= max_conns:
                        stats.tcp_rejected += 1
                        csock.close()
                        continue
                    csock.setblocking(False)
                    try:
                        csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        local = csock.getsockname()[0]
                    except OSError:
                        csock.close()
                        continue
                    conn = _Conn(csock, peer, local, now)
                    conns[csock] = conn
                    stats.tcp_connections += 1
                    sel.register(csock, selectors.EVENT_READ, conn)
                continue
            conn = key.data
            if conn.sock not in conns:
                continue
            if mask & selectors.EVENT_READ:
                try:
                    chunk = conn.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    chunk = None
                except OSError:
                    close(conn)
                    continue
                if chunk == b"":
                    conn.eof = True
                elif chunk:
                    conn.inbuf += chunk
                    conn.last = now
            process(conn)
            flush(conn)
            if conn.sock in conns:
                if conn.eof and not conn.out:
                    close(conn)
                else:
                    if not conn.out and len(conn.inbuf) >= 2:
                        process(conn)
                        flush(conn)
                    if conn.sock in conns:
                        want(conn)
        if now >= next_sweep:
            next_sweep = now + 1.0
            for conn in list(conns.values()):
                if now - conn.last > timeout:
                    stats.dropped["tcp_idle_timeout"] += 1
                    close(conn)
