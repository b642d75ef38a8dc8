"""Find the socket to register in a running process by protocol, address and port.

``register LABEL --pid PID --protocol tcp --address 127.0.0.1 --port 8080`` looks
through ``/proc/PID/fd`` for sockets, copies each one with ``pidfd_getfd`` (needs
ptrace rights over PID, as ``register-pid`` does) and keeps those that could be
registered (``sockets.describe``: listening TCP or bound unconnected UDP, IP, this
network namespace). The selectors must leave exactly one socket; the same socket
open under several fds counts once.
"""

import ipaddress
import os
import socket

from .errors import Error
from .sockets import describe, fd_from_pid

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}


class Candidate(object):
    """One registrable socket of the target process (``fd`` is our copy)."""

    def __init__(self, remote_fd, fd, domain, protocol, address, port):
        self.remote_fd = remote_fd
        self.fd = fd
        self.domain = domain
        self.protocol = protocol
        self.address = address
        self.port = port

    def __str__(self):
        return "fd %d: %s %s port %d" % (self.remote_fd, self.protocol, self.address, self.port)


def _socket_fds(pid):
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError as e:
        raise Error("cannot list the fds of pid %d: %s" % (pid, e.strerror))
    out = []
    for name in sorted(names, key=int):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            out.append((int(name), target))
    return out


def candidates(pid):
    """Registrable sockets of ``pid``, one per socket (lowest fd), as [Candidate]."""
    out, seen = [], set()
    try:
        for remote_fd, inode in _socket_fds(pid):
            if inode in seen:
                continue
            seen.add(inode)
            try:
                fd = fd_from_pid(pid, remote_fd)
            except Error:
                continue  # closed between listdir and pidfd_getfd
            try:
                domain, proto, _where = describe(fd)
            except Error:
                os.close(fd)  # a connection, a unix socket, another netns...
                continue
            with socket.socket(fileno=os.dup(fd)) as s:
                host, port = s.getsockname()[:2]
            out.append(Candidate(remote_fd, fd, domain, "tcp" if proto == socket.IPPROTO_TCP else "udp",
                                 str(ipaddress.ip_address(host.split("%", 1)[0])), port))
    except BaseException:
        close(out)
        raise
    return out


def close(cands):
    for c in cands:
        os.close(c.fd)


def _want(protocol, address, port):
    parts = [protocol or "tcp/udp", address or "any address", "port %d" % port if port is not None else "any port"]
    return " ".join(parts)


def parse_address(text):
    """The --address selector: an IP address (scope id dropped), compared as written
    (an IPv6 socket bound to ``::ffff:1.2.3.4`` matches that text, not ``1.2.3.4``)."""
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        raise Error("invalid --address %r: not an IP address" % text)


def pick(pid, protocol=None, address=None, port=None):
    """The one registrable socket of ``pid`` matching the selectors -> Candidate (caller closes .fd)."""
    address = parse_address(address)
    if protocol is not None and protocol not in PROTOCOLS:
        raise Error("invalid --protocol %r: use tcp or udp" % protocol)
    if port is not None and not 0 < port < 65536:
        raise Error("invalid --port %d: 1-65535" % port)
    all_ = candidates(pid)
    match = [c for c in all_
             if (protocol is None or c.protocol == protocol)
             and (address is None or c.address == address)
             and (port is None or c.port == port)]
    keep = match[0] if len(match) == 1 else None
    close([c for c in all_ if c is not keep])
    if keep is not None:
        return keep
    if not match:
        have = "; ".join(str(c) for c in all_) or "none"
        raise Error("pid %d has no listening TCP or bound UDP socket in this network namespace matching %s "
                    "(it has: %s)" % (pid, _want(protocol, address, port), have))
    raise Error("%d sockets of pid %d match %s (%s); narrow it with --protocol/--address/--port "
                "(several sockets on one address and port are a SO_REUSEPORT group: "
                "register one of them with register-pid)"
                % (len(match), pid, _want(protocol, address, port), "; ".join(str(c) for c in match)))
