"""Shared systemd plumbing (agility_runtime.systemd): socket activation and sd_notify."""
import json
import os
import socket
import subprocess
import sys
import tempfile

import pytest

from agility_runtime import systemd


def _child(socks, env, code):
    """Run ``code`` in a child that has ``socks`` at fds 3.. as systemd passes them and
    ``env`` (LISTEN_PID='self' -> the child's pid); it prints a JSON result."""
    redirs = " ".join("%d<&%d" % (3 + i, s.fileno()) for i, s in enumerate(socks))
    prog = ("import json, os, sys\n"
            "env = json.loads(sys.argv[1])\n"
            "if env.get('LISTEN_PID') == 'self': env['LISTEN_PID'] = str(os.getpid())\n"
            "from agility_runtime import systemd\n" + code)
    cmd = ["bash", "-c", 'exec %s; exec "$@"' % redirs, "sh", sys.executable, "-c", prog, json.dumps(env)]
    r = subprocess.run(cmd, pass_fds=[s.fileno() for s in socks], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


LIST = ("import fcntl\n"
        "try:\n"
        "    got = systemd.listen_fds(env, unset=True, require_pid=%s, strict=%s)\n"
        "except systemd.ActivationError as e:\n"
        "    print(json.dumps({'error': str(e)})); sys.exit(0)\n"
        "print(json.dumps({'fds': got, 'env': sorted(env),\n"
        "                  'cloexec': [bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) for fd, n in got]}))\n")


@pytest.fixture
def two_sockets():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    yield [a, b]
    a.close()
    b.close()


def test_listen_fds_for_this_process(two_sockets):
    got = _child(two_sockets, {"LISTEN_PID": "self", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "dns",
                               "OTHER": "x"}, LIST % (True, False))
    assert got == {"fds": [[3, "dns"], [4, ""]], "env": ["OTHER"], "cloexec": [True, True]}


@pytest.mark.parametrize("env, why", [
    ({"LISTEN_PID": "1", "LISTEN_FDS": "2"}, "is not this process"),
    ({"LISTEN_FDS": "2"}, "LISTEN_PID unset"),
    ({"LISTEN_PID": "self"}, "LISTEN_FDS unset"),
    ({"LISTEN_PID": "self", "LISTEN_FDS": "two"}, "not a number"),
    ({"LISTEN_PID": "self", "LISTEN_FDS": "0"}, "LISTEN_FDS=0"),
    ({"LISTEN_PID": "self", "LISTEN_FDS": "3"}, "fd 5 is not open"),
])
def test_listen_fds_not_for_us(two_sockets, env, why):
    if "fd 5" in why:  # asked for more fds than were passed: an error even when not strict
        assert why in _child(two_sockets, env, LIST % (True, False))["error"]
        return
    assert _child(two_sockets, env, LIST % (True, False))["fds"] == []
    assert why in _child(two_sockets, env, LIST % (True, True))["error"]


def test_listen_fds_without_pid_when_allowed(two_sockets):
    got = _child(two_sockets, {"LISTEN_FDS": "1"}, LIST % (False, True))
    assert got["fds"] == [[3, ""]]


def test_notify_path_and_abstract():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
            srv.bind(path)
            assert systemd.notify("READY=1\nSTATUS=ok", {"NOTIFY_SOCKET": path}) is True
            assert srv.recv(100) == b"READY=1\nSTATUS=ok"
    name = "agility-test-%d" % os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind("\0" + name)
        assert systemd.notify(b"STOPPING=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert srv.recv(100) == b"STOPPING=1"


def test_notify_without_systemd_or_listener_is_harmless():
    assert systemd.notify("READY=1", {}) is False
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/notify"}) is False
