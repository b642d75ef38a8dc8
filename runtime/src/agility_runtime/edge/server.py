"""The agility-edge server loop: one process, a selector for listening sockets
and UDP, one short-lived thread per TCP/TLS connection (bounded)."""

import json
import logging
import os
import selectors
import socket
import ssl
import struct
import threading
import time

from ..inet import (
    IP_FREEBIND, IP_ORIGDSTADDR, IP_PKTINFO, IPV6_FREEBIND, IPV6_ORIGDSTADDR,
    IPV6_PKTINFO, format_hostport as format_addr, host_text as normalize_ip,
)
from ..systemd import notify as _notify

LOG = logging.getLogger("agility_runtime.edge")

MAX_HEAD = 16384        # bytes of request line + headers
MAX_BODY_DRAIN = 65536  # request body bytes read and discarded
MAX_DATAGRAM = 4096
UDP_BATCH = 64          # datagrams handled per wake-up per socket
ACCEPT_BATCH = 64


def _batch(lst, batch):
    """How many accepts/receives to try on one wake-up.

    Inherited sockets share O_NONBLOCK with every process systemd hands them
    to, and systemd clears it when it spawns such a process (for example the
    unit that registers them with sk_lookup) unless the socket unit says
    NonBlocking=yes. A blocking listener would stall the loop in accept()
    once the queue is drained, so re-assert non-blocking mode, and handle a
    single connection per wake-up if it had been lost.
    """
    if os.get_blocking(lst.sock.fileno()):
        lst.sock.setblocking(False)
        return 1
    return batch


class RateLimitedLog(object):
    """One log line per error, at most `rate` lines a second (the rest counted)."""

    def __init__(self, logger, rate=20.0):
        self.logger = logger
        self.rate = rate
        self.allow = rate
        self.last = time.monotonic()
        self.suppressed = 0
        self.lock = threading.Lock()

    def __call__(self, fmt, *args):
        with self.lock:
            now = time.monotonic()
            self.allow = min(self.rate, self.allow + (now - self.last) * self.rate)
            self.last = now
            if self.allow < 1.0:
                self.suppressed += 1
                return
            self.allow -= 1.0
            suppressed, self.suppressed = self.suppressed, 0
        if suppressed:
            fmt += " (%d similar lines suppressed)"
            args = args + (suppressed,)
        self.logger.warning(fmt, *args)


class Stats(object):
    FIELDS = ("connections", "http_requests", "http_bad_requests", "tls_handshake_failures",
              "udp_replies", "udp_ignored", "udp_send_errors", "rejected", "errors")

    def __init__(self):
        self.lock = threading.Lock()
        self.values = dict((f, 0) for f in self.FIELDS)

    def inc(self, field, n=1):
        with self.lock:
            self.values[field] += n

    def snapshot(self):
        with self.lock:
            return dict(self.values)


class BadRequest(Exception):
    pass


def parse_head(head):
    """Request line and headers (lower-cased names) of an HTTP/1.x request head."""
    try:
        text = head.decode("iso-8859-1")
    except Exception:  # pragma: no cover - latin-1 decodes anything
        raise BadRequest("undecodable request")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        raise BadRequest("bad request line %r" % lines[0][:80])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name.strip() != name:
            raise BadRequest("bad header line %r" % line[:80])
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


def in_pktinfo(ifindex, spec_dst):
    return struct.pack("=i4s4s", ifindex, socket.inet_pton(socket.AF_INET, spec_dst), b"\0" * 4)


def in6_pktinfo(addr, ifindex):
    return struct.pack("=16si", socket.inet_pton(socket.AF_INET6, addr), ifindex)


def parse_cmsgs(ancdata):
    """Destination (addr, port-or-None) of a datagram from its control messages."""
    addr = port = None
    for level, ctype, data in ancdata:
        if level == socket.IPPROTO_IP and ctype == IP_ORIGDSTADDR and len(data) >= 8:
            port = struct.unpack("!H", data[2:4])[0]
            addr = socket.inet_ntop(socket.AF_INET, data[4:8])
        elif level == socket.IPPROTO_IPV6 and ctype == IPV6_ORIGDSTADDR and len(data) >= 24:
            port = struct.unpack("!H", data[2:4])[0]
            addr = normalize_ip(socket.inet_ntop(socket.AF_INET6, data[8:24]))
        elif level == socket.IPPROTO_IP and ctype == IP_PKTINFO and len(data) >= 12 and addr is None:
            addr = socket.inet_ntop(socket.AF_INET, data[8:12])
        elif level == socket.IPPROTO_IPV6 and ctype == IPV6_PKTINFO and len(data) >= 16 and addr is None:
            addr = normalize_ip(socket.inet_ntop(socket.AF_INET6, data[:16]))
    return addr, port


class EdgeServer(object):
    def __init__(self, listeners, pop, tls_context=None, max_connections=512,
                 read_timeout=5.0, error_log_rate=20.0):
        self.listeners = list(listeners)
        self.pop = pop
        self.tls_context = tls_context
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        self.stats = Stats()
        self.log_error = RateLimitedLog(LOG, error_log_rate)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.started = threading.Event()
        if any(l.kind == "tls" for l in self.listeners) and tls_context is None:
            raise ValueError("a tls listener needs a certificate and key")
        if tls_context is not None:
            tls_context.sni_callback = self._sni_callback

    # -- lifecycle ---------------------------------------------------------

    def stop(self):
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def close(self):
        for lst in self.listeners:
            try:
                lst.sock.close()
            except OSError:
                pass
        self._wake_r.close()
        self._wake_w.close()

    def serve_forever(self):
        sel = selectors.DefaultSelector()
        try:
            for lst in self.listeners:
                sel.register(lst.sock, selectors.EVENT_READ, lst)
            sel.register(self._wake_r, selectors.EVENT_READ, None)
            self.started.set()
            while not self._stop.is_set():
                for key, events in sel.select(timeout=1.0):
                    lst = key.data
                    if lst is None:
                        try:
                            self._wake_r.recv(64)
                        except OSError:
                            pass
                        continue
                    try:
                        if lst.kind == "udp":
                            self._handle_udp(lst)
                        else:
                            self._accept(lst)
                    except Exception as exc:  # never let one socket kill the loop
                        self.stats.inc("errors")
                        self.log_error("%s: %s: %s", lst.describe(), type(exc).__name__, exc)
        finally:
            sel.close()

    # -- TCP / TLS ---------------------------------------------------------

    def _accept(self, lst):
        for dummy in range(_batch(lst, ACCEPT_BATCH)):
            try:
                conn, peer = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.stats.inc("errors")
                self.log_error("%s: accept: %s", lst.describe(), exc)
                return
            if not self.slots.acquire(blocking=False):
                self.stats.inc("rejected")
                self.log_error("%s: %d connections open, refusing %s",
                               lst.describe(), self.max_connections, format_addr(peer))
                conn.close()
                continue
            self.stats.inc("connections")
            thr = threading.Thread(target=self._connection, args=(conn, peer, lst),
                                   name="edge-conn", daemon=True)
            try:
                thr.start()
            except RuntimeError as exc:
                self.slots.release()
                conn.close()
                self.stats.inc("errors")
                self.log_error("cannot start thread: %s", exc)

    def _sni_callback(self, sslobj, server_name, context):
        try:
            sslobj.agility_sni = server_name
        except Exception:
            pass
        return None

    def _connection(self, conn, peer, lst):
        peer_s = format_addr(peer)
        try:
            conn.setblocking(True)
            conn.settimeout(self.read_timeout)
            local = format_addr(conn.getsockname())
            sni = None
            tls = lst.kind == "tls"
            if tls:
                try:
                    conn = self.tls_context.wrap_socket(conn, server_side=True,
                                                        do_handshake_on_connect=False)
                    conn.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    self.stats.inc("tls_handshake_failures")
                    self.log_error("tls %s -> %s: handshake: %s", peer_s, local, exc)
                    return
                sni = getattr(conn, "agility_sni", None)
            try:
                method, path, version, headers = self._read_request(conn)
            except BadRequest as exc:
                self.stats.inc("http_bad_requests")
                self.log_error("http %s -> %s: %s", peer_s, local, exc)
                self._send(conn, 400, {"pop": self.pop, "error": "bad request"})
                self._linger(conn)
                return
            except socket.timeout:
                self.stats.inc("http_bad_requests")
                self.log_error("http %s -> %s: read timeout", peer_s, local)
                return
            if lst.kind == "health":
                body = {"status": "ok", "pop": self.pop, "stats": self.stats.snapshot()}
            else:
                body = {"pop": self.pop, "host": headers.get("host"), "local": local,
                        "peer": peer_s, "proto": "http", "tls": tls,
                        "method": method, "path": path}
                if tls:
                    body["sni"] = sni
            self.stats.inc("http_requests")
            self._send(conn, 200, body, head_only=(method == "HEAD"))
        except Exception as exc:
            self.stats.inc("errors")
            self.log_error("%s %s: %s: %s", lst.kind, peer_s, type(exc).__name__, exc)
        finally:
            try:
                conn.close()
            except Exception:
                pass
            self.slots.release()

    def _read_request(self, conn):
        deadline = time.monotonic() + 2 * self.read_timeout
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) >= MAX_HEAD:
                raise BadRequest("request head larger than %d bytes" % MAX_HEAD)
            if time.monotonic() > deadline:
                raise socket.timeout("request too slow")
            chunk = conn.recv(4096)
            if not chunk:
                raise BadRequest("connection closed before a complete request (%d bytes)" % len(buf))
            buf += chunk
        head, rest = buf[:end], buf[end + 4:]
        method, path, version, headers = parse_head(head)
        # Drain a (small) body so that closing does not reset the connection.
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BadRequest("bad content-length")
        remaining = min(max(length, 0), MAX_BODY_DRAIN) - len(rest)
        while remaining > 0 and time.monotonic() < deadline:
            chunk = conn.recv(min(remaining, 16384))
            if not chunk:
                break
            remaining -= len(chunk)
        return method, path, version, headers

    def _linger(self, conn, limit=262144):
        """Half-close and drain what the client still sends, so that closing with
        unread data does not reset the connection before it reads our answer."""
        try:
            if not isinstance(conn, ssl.SSLSocket):
                conn.shutdown(socket.SHUT_WR)
            conn.settimeout(min(self.read_timeout, 1.0))
            while limit > 0:
                chunk = conn.recv(16384)
                if not chunk:
                    break
                limit -= len(chunk)
        except (OSError, ValueError):
            pass

    def _send(self, conn, status, body, head_only=False):
        reason = {200: "OK", 400: "Bad Request"}.get(status, "Error")
        payload = (json.dumps(body, sort_keys=True) + "\n").encode()
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\nServer: agility-edge\r\n"
                "X-Agility-Pop: %s\r\n\r\n" % (status, reason, len(payload), self.pop)).encode()
        conn.sendall(head if head_only else head + payload)

    # -- UDP -----------------------------------------------------------------

    def _handle_udp(self, lst):
        sock = lst.sock
        for dummy in range(_batch(lst, UDP_BATCH)):
            try:
                data, anc, flags, peer = sock.recvmsg(MAX_DATAGRAM, 512)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # e.g. ICMP errors reported on the socket: log and go on.
                self.stats.inc("errors")
                self.log_error("%s: recvmsg: %s", lst.describe(), exc)
                return
            try:
                self._udp_datagram(lst, data, anc, peer)
            except Exception as exc:
                self.stats.inc("errors")
                self.log_error("udp %s: %s: %s", format_addr(peer), type(exc).__name__, exc)

    def _udp_datagram(self, lst, data, anc, peer):
        sock = lst.sock
        bound = sock.getsockname()
        dst_addr, dst_port = parse_cmsgs(anc)
        if dst_addr is None:
            dst_addr = normalize_ip(bound[0])
        if dst_port is None:
            dst_port = bound[1]
        peer_host = normalize_ip(peer[0])
        if not (data == b"ping" or data.startswith(b"ping ")):
            self.stats.inc("udp_ignored")
            self.log_error("udp %s -> %s: ignored datagram (%d bytes, not 'ping')",
                           format_addr(peer), format_addr((dst_addr, dst_port)), len(data))
            return
        body = {"pop": self.pop, "host": None, "local": format_addr((dst_addr, dst_port)),
                "peer": format_addr((peer_host, peer[1])), "proto": "udp",
                "token": data[5:133].decode("utf-8", "replace")}
        reply = (json.dumps(body, sort_keys=True) + "\n").encode()
        try:
            self._udp_reply(sock, bound, reply, peer, peer_host, dst_addr, dst_port)
            self.stats.inc("udp_replies")
        except OSError as exc:
            self.stats.inc("udp_send_errors")
            self.log_error("udp %s -> %s: reply: %s", format_addr(peer),
                           format_addr((dst_addr, dst_port)), exc)

    def _udp_reply(self, sock, bound, reply, peer, peer_host, dst_addr, dst_port):
        v4 = ":" not in dst_addr
        if dst_port == bound[1]:
            # Same port: the bound socket can send, with the source address chosen per datagram.
            if sock.family == socket.AF_INET:
                cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, in_pktinfo(0, dst_addr))]
            elif v4:  # IPv4 datagram on a dual-stack IPv6 socket
                cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, in_pktinfo(0, dst_addr))]
            else:
                cmsg = [(socket.IPPROTO_IPV6, IPV6_PKTINFO, in6_pktinfo(dst_addr, 0))]
            sock.sendmsg([reply], cmsg, 0, peer)
            return
        # sk_lookup steered a datagram for another port onto this socket: reply from a
        # transient socket bound to the exact destination (freebind, reuseaddr).
        family = socket.AF_INET if v4 else socket.AF_INET6
        out = socket.socket(family, socket.SOCK_DGRAM)
        try:
            out.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if v4:
                out.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            else:
                out.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            out.bind((dst_addr, dst_port))
            out.sendto(reply, (peer_host, peer[1]))
        finally:
            out.close()


def sd_notify(message):
    """Tell systemd (Type=notify) about our state; no-op without NOTIFY_SOCKET."""
    sent = _notify(message)
    if not sent and os.environ.get("NOTIFY_SOCKET"):
        LOG.warning("sd_notify: cannot send to %s", os.environ["NOTIFY_SOCKET"])
    return sent
