"""Listening sockets: ``--listen`` specs and systemd socket activation (LISTEN_FDS).

UDP sockets get IP_PKTINFO / IPV6_RECVPKTINFO so each reply leaves from the address
the query was sent to (needed when sk_lookup steers a whole prefix to one socket),
plus IP_FREEBIND / IPV6_FREEBIND.  IPv6 sockets opened here are IPv6-only.
"""

import socket

from agility_runtime import systemd
from agility_runtime.inet import (
    AddressError as ListenError, IP_FREEBIND, IP_PKTINFO, IPV6_FREEBIND, IPV6_RECVPKTINFO, parse_hostport)


def parse_listen(spec):
    """``127.0.0.1:53``, ``[::1]:5353``, ``:53`` (all IPv4) -> (family, host, port)."""
    return parse_hostport(spec)


def prepare_udp(sock):
    """Options a UDP listener needs, also applied to sockets handed over by systemd."""
    if sock.family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        _try(sock.setsockopt, socket.IPPROTO_IP, IP_FREEBIND, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        _try(sock.setsockopt, socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    _try(sock.setsockopt, socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)


def _try(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def open_listener(family, host, port, kind, reuseport=True):
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_DGRAM:
            prepare_udp(sock)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ListenError("cannot listen on %s port %d (%s): %s"
                          % (host, port, "udp" if kind == socket.SOCK_DGRAM else "tcp", exc))
    return sock


def open_specs(specs):
    """UDP and TCP sockets for every spec: (udp_list, tcp_list)."""
    udp, tcp = [], []
    for family, host, port in specs:
        udp.append(open_listener(family, host, port, socket.SOCK_DGRAM))
        tcp.append(open_listener(family, host, port, socket.SOCK_STREAM))
    return udp, tcp


def systemd_sockets(environ=None):
    """Sockets passed by systemd (LISTEN_PID/LISTEN_FDS), as (udp_list, tcp_list).

    Only honoured when LISTEN_PID is our pid; the variables are then removed so
    children do not see them.  Datagram sockets are UDP, stream sockets must listen.
    """
    udp, tcp = [], []
    for fd, _name in systemd.listen_fds(environ, unset=True):
        sock = socket.socket(fileno=fd)
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise ListenError("systemd socket fd %d is not an IP socket" % fd)
        if sock.type == socket.SOCK_DGRAM:
            prepare_udp(sock)
            udp.append(sock)
        elif sock.type == socket.SOCK_STREAM:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                raise ListenError("systemd socket fd %d is a stream socket that does not listen" % fd)
            tcp.append(sock)
        else:
            raise ListenError("systemd socket fd %d has an unsupported type" % fd)
    return udp, tcp


def describe(sock):
    addr = sock.getsockname()
    kind = "udp" if sock.type == socket.SOCK_DGRAM else "tcp"
    if sock.family == socket.AF_INET6:
        return "%s:[%s]:%d" % (kind, addr[0], addr[1])
    return "%s:%s:%d" % (kind, addr[0], addr[1])
