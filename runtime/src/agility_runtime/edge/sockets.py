"""Listening sockets for agility-edge: --listen specs and systemd socket activation."""

import socket

from .. import systemd
from ..inet import (
    AddressError, IP_PKTINFO, IP_RECVORIGDSTADDR, IPV6_FREEBIND, IPV6_RECVORIGDSTADDR, IPV6_RECVPKTINFO,
    format_hostport as format_addr, parse_hostport)

KINDS = ("tcp", "udp", "tls")

# LISTEN_FDNAMES values that mean "this stream socket speaks TLS".
TLS_NAMES = ("https", "tls")


class Listener(object):
    """One listening socket and what it speaks."""

    def __init__(self, kind, sock, name=None, activated=False):
        if kind not in KINDS + ("health",):
            raise ValueError("unknown listener kind %r" % (kind,))
        self.kind = kind
        self.sock = sock
        self.name = name or kind
        self.activated = activated

    def describe(self):
        try:
            return "%s:%s" % (self.kind, format_addr(self.sock.getsockname()))
        except OSError:
            return "%s:fd%d" % (self.kind, self.sock.fileno())

    def __repr__(self):
        return "Listener(%s)" % self.describe()


def parse_listen(spec):
    """'tcp:127.0.0.1:8080', 'udp:[::1]:8080', 'tls:0.0.0.0:443' -> (kind, host, port)."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        raise ValueError("listen spec %r: expected KIND:ADDR:PORT with KIND one of %s"
                         % (spec, ", ".join(KINDS)))
    try:
        _family, host, port = parse_hostport(rest, allow_port_zero=True, default_host=None)
    except AddressError as exc:
        raise ValueError("listen spec %r: %s" % (spec, exc))
    return kind, host, port


def enable_udp_dstaddr(sock):
    """Ask the kernel for the destination address of every datagram."""
    family = sock.family
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVORIGDSTADDR, 1)
    elif family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, 1)
        # IPv6 refuses an IPV6_PKTINFO source that is only routed locally (not assigned
        # to an interface) unless the socket is freebind: needed for pool prefixes.
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        # A dual-stack socket receives IPv4 too: ask for the IPv4 forms as well.
        for opt in (IP_PKTINFO, IP_RECVORIGDSTADDR):
            try:
                sock.setsockopt(socket.IPPROTO_IP, opt, 1)
            except OSError:
                pass


def make_listener(kind, host, port, backlog=1024):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    sock = socket.socket(family, stype)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            # '::' serves IPv4 too (needed for sk_lookup IPv4 assignment).
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if kind == "udp":
            enable_udp_dstaddr(sock)
        sock.bind((host, port))
        if stype == socket.SOCK_STREAM:
            sock.listen(backlog)
    except Exception:
        sock.close()
        raise
    sock.setblocking(False)
    return Listener(kind, sock)


def classify_fd(fd, name):
    """Wrap an inherited fd; kind from SO_TYPE/SO_DOMAIN and the fd name."""
    probe = socket.socket(fileno=fd)
    stype = probe.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
    family = probe.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
    probe.detach()
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ValueError("fd %d (%s): not an IP socket (family %d)" % (fd, name, family))
    sock = socket.socket(family, stype, 0, fileno=fd)
    sock.set_inheritable(False)
    lname = (name or "").lower()
    if stype == socket.SOCK_DGRAM:
        kind = "udp"
        enable_udp_dstaddr(sock)
    elif stype == socket.SOCK_STREAM:
        kind = "tls" if lname in TLS_NAMES or lname.startswith(TLS_NAMES) else "tcp"
    else:
        sock.detach()
        raise ValueError("fd %d (%s): unsupported socket type %d" % (fd, name, stype))
    sock.setblocking(False)
    return Listener(kind, sock, name=name or kind, activated=True)


def activated_listeners(environ=None, unset=True):
    """Sockets passed by systemd (LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES), or []."""
    return [classify_fd(fd, name) for fd, name in systemd.listen_fds(environ, unset=unset)]
