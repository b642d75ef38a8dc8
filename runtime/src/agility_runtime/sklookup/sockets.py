"""Getting sockets to register: validation, systemd socket activation, pidfd_getfd."""
import ctypes
import os
import socket
import struct

from .. import systemd
from ..inet import SO_NETNS_COOKIE
from .errors import Error

SYS_pidfd_open = 434
SYS_pidfd_getfd = 438


def _netns_cookie(sock):
    return struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]


def own_netns_cookie():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return _netns_cookie(s)


def describe(fd):
    """Validate a socket fd; return (domain, protocol, local address string).

    Accepted: a socket of this network namespace, AF_INET or AF_INET6, that is
    a listening TCP socket or a bound, unconnected UDP socket.
    """
    try:
        st = os.fstat(fd)
    except OSError as e:
        raise Error("fd %d: %s" % (fd, e.strerror))
    import stat as _stat
    if not _stat.S_ISSOCK(st.st_mode):
        raise Error("fd %d is not a socket" % fd)
    sock = socket.socket(fileno=os.dup(fd))
    try:
        domain = sock.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        stype = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        proto = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
        if domain not in (socket.AF_INET, socket.AF_INET6):
            raise Error("fd %d: unsupported address family %d (need AF_INET or AF_INET6)" % (fd, domain))
        try:
            same = _netns_cookie(sock) == own_netns_cookie()
        except OSError:
            same = True  # kernel without SO_NETNS_COOKIE (< 5.14): cannot check
        if not same:
            raise Error("fd %d: socket belongs to another network namespace" % fd)
        local = sock.getsockname()
        where = "%s port %d" % (local[0], local[1])
        if stype == socket.SOCK_STREAM and proto == socket.IPPROTO_TCP:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                raise Error("fd %d: TCP socket (%s) is not listening" % (fd, where))
        elif stype == socket.SOCK_DGRAM and proto == socket.IPPROTO_UDP:
            if local[1] == 0:
                raise Error("fd %d: UDP socket is not bound" % fd)
            try:
                sock.getpeername()
            except OSError:
                pass
            else:
                raise Error("fd %d: UDP socket (%s) is connected" % (fd, where))
        else:
            raise Error("fd %d: need a TCP or UDP socket (type %d, protocol %d)" % (fd, stype, proto))
        return domain, proto, where
    finally:
        sock.close()


def systemd_fds(env=None):
    """[(fd, name)] passed by systemd socket activation (LISTEN_FDS/LISTEN_FDNAMES)."""
    # LISTEN_PID may be absent: `register` is also run by shells that forward the fds.
    try:
        return systemd.listen_fds(env, require_pid=False, strict=True)
    except systemd.ActivationError as e:
        raise Error(str(e))


def _syscall(nr, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ret = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def fd_from_pid(pid, fd):
    """Duplicate fd ``fd`` of process ``pid`` into this process (pidfd_getfd)."""
    try:
        pidfd = _syscall(SYS_pidfd_open, pid, 0)
    except OSError as e:
        raise Error("pidfd_open(%d): %s" % (pid, e.strerror))
    try:
        return _syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    except OSError as e:
        raise Error("pidfd_getfd(pid %d, fd %d): %s" % (pid, fd, e.strerror))
    finally:
        os.close(pidfd)
