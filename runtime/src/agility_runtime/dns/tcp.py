"""TCP: one selector loop per worker for all TCP listeners.

Length-prefixed messages (RFC 1035 4.2.2 / RFC 7766); several queries pipelined on
one connection are answered in order; a client that does not read its responses is
paused once 256 KiB are queued.  The limits that keep slow and idle clients from
starving others (message deadline, idle timeout, per-source cap, closing the longest
idle connection at the total cap) are described and kept in ``tcplimits``.
"""

import selectors
import socket
import time

from agility_runtime.dns import handler
from agility_runtime.dns.tcplimits import DEFAULT_LIMITS, IDLE, READING, WRITING, ConnTable, source_of

_OUT_LIMIT = 256 * 1024
_ACCEPT_BATCH = 64


class _Conn:
    __slots__ = ("sock", "peer", "local", "inbuf", "out", "eof")

    def __init__(self, sock, peer, local):
        self.sock = sock
        self.peer = peer
        self.local = local
        self.inbuf = bytearray()
        self.out = bytearray()
        self.eof = False


def serve(listeners, holder, stats, udp_max, limits=DEFAULT_LIMITS):
    sel = selectors.DefaultSelector()
    for lsock in listeners:
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ, None)
    conns = {}
    table = ConnTable(limits)
    accepting = [True]
    closed = stats.tcp_closed

    def set_accepting(on):
        if accepting[0] == on:
            return
        accepting[0] = on
        for lsock in listeners:
            if on:
                sel.register(lsock, selectors.EVENT_READ, None)
            else:
                sel.unregister(lsock)

    def close(conn, reason=None):
        try:
            sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conns.pop(conn.sock, None)
        table.remove(conn.sock)
        try:
            conn.sock.close()
        except OSError:
            pass
        if reason is not None:
            closed[reason] += 1
        stats.tcp_open = len(conns)
        if not accepting[0] and not table.full():
            set_accepting(True)

    def accept(lsock, now):
        for dummy in range(_ACCEPT_BATCH):
            if table.full() and table.oldest_idle() is None:
                # every slot is busy: leave newcomers in the kernel's accept queue until a
                # slot frees (busy slots end within msg_timeout) instead of refusing them
                set_accepting(False)
                return
            try:
                csock, peer = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                source = source_of(peer[0])
            except (OSError, ValueError):
                csock.close()
                continue
            if table.source_full(source):
                closed["per_source_limit"] += 1
                csock.close()
                continue
            csock.setblocking(False)
            try:
                csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                local = csock.getsockname()[0]
            except OSError:
                csock.close()
                continue
            if table.full():
                close(conns[table.oldest_idle()], "evicted_idle")
            conn = _Conn(csock, peer, local)
            conns[csock] = conn
            table.add(csock, source, now)
            stats.tcp_connections += 1
            stats.tcp_open = len(conns)
            sel.register(csock, selectors.EVENT_READ, conn)

    def want(conn):
        events = 0
        if not conn.eof and len(conn.out) < _OUT_LIMIT:
            events |= selectors.EVENT_READ
        if conn.out:
            events |= selectors.EVENT_WRITE
        try:
            sel.modify(conn.sock, events, conn)
        except (KeyError, ValueError):
            pass

    def process(conn):
        """Answer the complete messages in the input buffer; returns how many."""
        buf = conn.inbuf
        done = 0
        while len(buf) >= 2 and len(conn.out) < _OUT_LIMIT:
            length = (buf[0] << 8) | buf[1]
            if length == 0:
                stats.dropped["tcp_empty_message"] += 1
                conn.eof = True
                buf.clear()
                break
            if len(buf) < 2 + length:
                break
            msg = bytes(buf[2:2 + length])
            del buf[:2 + length]
            done += 1
            resp = handler.handle(holder.state, msg, conn.peer, conn.local, stats, udp_max, tcp=True)
            if resp is not None:
                conn.out += len(resp).to_bytes(2, "big")
                conn.out += resp
        return done

    def flush(conn):
        """Send what is queued; returns bytes sent, or None if the connection broke."""
        sent = 0
        while conn.out:
            try:
                n = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return None
            del conn.out[:n]
            sent += n
        return sent

    def on_event(conn, mask, now):
        if mask & selectors.EVENT_READ:
            try:
                chunk = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                chunk = None
            except OSError:
                close(conn)
                return
            if chunk == b"":
                conn.eof = True
            elif chunk:
                conn.inbuf += chunk
        progress = 0
        while True:
            done = process(conn)
            sent = flush(conn)
            if sent is None:
                close(conn)
                return
            progress += done + sent
            # answers left the queue, so more pipelined queries may now fit
            if not (sent and conn.inbuf and len(conn.out) < _OUT_LIMIT and not conn.eof):
                break
        if conn.eof and not conn.out:
            close(conn)
            return
        state = WRITING if conn.out else READING if conn.inbuf else IDLE
        table.update(conn.sock, state, now, progress > 0)
        want(conn)
        if state == IDLE and not accepting[0]:
            set_accepting(True)  # an idle connection can now make room for a newcomer

    tick = max(0.02, min(0.25, limits.msg_timeout / 2))
    next_sweep = time.monotonic() + tick
    while True:
        events = sel.select(timeout=tick)
        now = time.monotonic()
        for key, mask in events:
            if key.data is None:
                accept(key.fileobj, now)
                continue
            conn = key.data
            if conn.sock in conns:
                on_event(conn, mask, now)
        if now >= next_sweep:
            next_sweep = now + tick
            for sock, reason in table.expired(now):
                close(conns[sock], reason)
            if not accepting[0] and table.oldest_idle() is not None:
                set_accepting(True)
