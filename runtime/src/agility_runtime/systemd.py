"""The two systemd protocols the services speak: socket activation and sd_notify.

Shared by agility-dns, agility-edge and agility-lookup (sd_listen_fds(3),
sd_notify(3); no libsystemd needed).
"""

import os
import socket

LISTEN_FDS_START = 3
_ACTIVATION_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class ActivationError(ValueError):
    """Socket-activation variables that cannot be used (one-line message)."""


def listen_fds(environ=None, unset=False, require_pid=True, strict=False):
    """Sockets passed by systemd: [(fd, name)] for fds 3.. (name '' if not named).

    Like sd_listen_fds(): only when LISTEN_PID is this process (with
    ``require_pid=False`` a missing LISTEN_PID is accepted too, for a command
    started by a shell that forwards the fds); the fds are made close-on-exec;
    ``unset`` removes the variables so children do not see them. Not for us, or
    malformed: [] , or with ``strict`` an ActivationError saying why.
    """
    env = os.environ if environ is None else environ

    def refuse(msg):
        if strict:
            raise ActivationError(msg)
        return []

    pid_text = env.get("LISTEN_PID")
    count_text = env.get("LISTEN_FDS")
    if pid_text is None and require_pid:
        return refuse("no sockets passed (LISTEN_PID unset); run from a systemd socket unit")
    if pid_text is not None and (not pid_text.isdigit() or int(pid_text) != os.getpid()):
        return refuse("LISTEN_PID=%s is not this process (%d)" % (pid_text, os.getpid()))
    if count_text is None or not count_text.isdigit():
        return refuse("no sockets passed (LISTEN_FDS unset or not a number); run from a systemd socket unit"
                      if count_text is None else "LISTEN_FDS=%r is not a number" % count_text)
    count = int(count_text)
    if count <= 0:
        return refuse("no sockets passed (LISTEN_FDS=0); run from a systemd socket unit")
    names = env.get("LISTEN_FDNAMES", "")
    names = names.split(":") if names else []
    if unset:
        for key in _ACTIVATION_VARS:
            env.pop(key, None)
    out = []
    for i in range(count):
        fd = LISTEN_FDS_START + i
        try:
            os.set_inheritable(fd, False)
        except OSError as e:
            raise ActivationError("LISTEN_FDS=%d but fd %d is not open: %s" % (count, fd, e.strerror))
        out.append((fd, names[i] if i < len(names) else ""))
    return out


def notify(message, environ=None):
    """Send ``message`` (str or bytes, e.g. "READY=1") to systemd.

    Returns True if sent; False without NOTIFY_SOCKET (not run by systemd with
    Type=notify) or if the send failed: a service never fails because of it.
    """
    env = os.environ if environ is None else environ
    addr = env.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    if isinstance(message, str):
        message = message.encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, addr)
    except OSError:
        return False
    return True
