"""Listening sockets: ``--listen`` specs and systemd socket activation (LISTEN_FDS).

UDP sockets get IP_PKTINFO / IPV6_RECVPKTINFO so each reply leaves from the address
the query was sent to (needed when sk_lookup steers a whole prefix to one socket),
plus IP_FREEBIND / IPV6_FREEBIND.  IPv6 sockets opened here are IPv6-only.
"""

import os
import socket

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_FREEBIND = 78
SD_LISTEN_FDS_START = 3


class ListenError(ValueError):
    pass


def parse_listen(spec):
    """``127.0.0.1:53``, ``[::1]:5353``, ``:53`` (all IPv4) -> (family, host, port)."""
    spec = spec.strip()
    if spec.startswith("["):
        host, sep, port = spec[1:].partition("]:")
        if not sep:
            raise ListenError("%r: IPv6 listen addresses look like [::1]:5353" % spec)
        family = socket.AF_INET6
    else:
        host, sep, port = spec.rpartition(":")
        if not sep:
            raise ListenError("%r: expected ADDRESS:PORT" % spec)
        if ":" in host:
            raise ListenError("%r: put IPv6 addresses in brackets, e.g. [::1]:5353" % spec)
        family = socket.AF_INET
        host = host or "0.0.0.0"
    try:
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise ListenError("%r: bad port" % spec)
    try:
        socket.inet_pton(family, host)
    except OSError:
        raise ListenError("%r: %r is not an IP address" % (spec, host))
    return family, host, port


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
    environ = os.environ if environ is None else environ
    try:
        pid = int(environ.get("LISTEN_PID", "0"))
        count = int(environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return [], []
    if pid != os.getpid() or count <= 0:
        return [], []
    for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(key, None)
    udp, tcp = [], []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
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
