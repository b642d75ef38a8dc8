"""Helpers to run the real agility-edge process in tests."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

EDGE = [sys.executable, "-m", "agility_runtime.edge.cli"]


def free_port(kind="tcp", host="127.0.0.1"):
    """A port free for both TCP and UDP on host (racy, good enough for tests)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for dummy in range(50):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        u = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
        except OSError:
            continue
        finally:
            u.close()
        return port
    raise RuntimeError("no free port")


class Edge(object):
    """A running agility-edge; stderr collected line by line."""

    def __init__(self, args, netns=None, env=None, pass_fds=(), expect_listeners=None, wrapper=None):
        cmd = list(EDGE) + list(args)
        if wrapper:
            cmd = wrapper + cmd
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env, pass_fds=pass_fds)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if expect_listeners is None:
            expect_listeners = sum(1 for a in args if a == "--listen") + ("--health" in args)
        deadline = time.monotonic() + 15
        while self.count("INFO listening", wait=0) < expect_listeners:
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError("agility-edge exited %s: %s" % (self.proc.returncode, self.text()))
            if time.monotonic() > deadline:
                raise RuntimeError("agility-edge not ready: %s" % self.text())
            time.sleep(0.02)
        time.sleep(0.05)

    def _read(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def count(self, needle, at_least=1, wait=3.0):
        """Lines containing ``needle``; waits up to ``wait`` s for ``at_least`` of them
        (the log line of an event may land just after the client saw the event)."""
        deadline = time.monotonic() + wait
        while True:
            found = sum(1 for line in list(self.lines) if needle in line)
            if found >= at_least or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def text(self):
        return "\n".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


def http_get(host, port, hostname="www.example.com", path="/", timeout=5, raw=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.sendall(raw if raw is not None else
                  ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, hostname)).encode())
        buf = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
    finally:
        s.close()
    head, sep, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else None
    return status, (json.loads(body) if body else None)


def udp_ping(host, port, token="t", timeout=3, source=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        s.send(("ping %s" % token).encode())
        data, addr = s.recvfrom(65536)
        return json.loads(data), addr
    finally:
        s.close()


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2 for network namespaces")
