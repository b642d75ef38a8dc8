"""Helpers for the agility-dns tests: policy documents, free ports, a real server."""

import copy
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import dns.message
import dns.query

VENV_BIN = os.path.dirname(sys.executable)
AGILITY_DNS = os.path.join(VENV_BIN, "agility-dns")

BASE_DOC = {
    "format": "agility.addressing/policy", "version": 1,
    "pop": {"name": "lhr01", "index": 3},
    "pools": {
        "free": {"ipv4": {"announced": "198.18.16.0/20", "used": "198.18.16.0/20"},
                 "ipv6": {"announced": "2001:db8:16::/48", "used": "2001:db8:16::/64"}},
        "free2": {"ipv4": {"announced": "198.18.128.0/20", "used": "198.18.128.0/24"},
                  "ipv6": {"announced": "2001:db8:128::/48", "used": "2001:db8:128::/64"}},
        "pro": {"ipv4": {"announced": "198.18.32.0/24", "used": "198.18.32.0/28"}},
        "ecs": {"ipv4": {"announced": "198.18.48.0/24", "used": "198.18.48.0/30"}},
        "loc": {"ipv4": {"announced": "198.18.64.0/24", "used": "198.18.64.0/32"}},
    },
    "policies": [
        {"name": "ecs-nets", "match": {"client_subnets": ["10.1.0.0/16"], "zones": ["ecs.example"]},
         "pool": "ecs", "ttl": 30, "strategy": "single"},
        {"name": "local-127-0-0-2", "match": {"local_addresses": ["127.0.0.2/32"], "zones": ["local.example"]},
         "pool": "loc", "ttl": 40, "strategy": "single"},
        {"name": "pro", "match": {"account_types": ["pro"]}, "pool": "pro", "ttl": 60, "strategy": "per_pop"},
        {"name": "diverse", "match": {"zones": ["diverse.example"]}, "pool": "free", "secondary_pool": "free2",
         "ttl": 20},
        {"name": "free", "pool": "free", "ttl": 300},
    ],
    "default_policy": "free",
    "zones": {
        "example.com": {
            "account_type": "free",
            "soa": {"mname": "ns1.example.com", "rname": "hostmaster.example.com", "serial": 7,
                    "minimum": 120, "ttl": 3600},
            "ns": ["ns1.example.com", "ns2.example.com"],
            "records": [
                {"name": "ns1", "type": "A", "data": "192.0.2.53"},
                {"name": "ns1", "type": "AAAA", "data": "2001:db8::53"},
                {"name": "ns2", "type": "A", "data": "192.0.2.54"},
                {"name": "@", "type": "MX", "data": "10 mail"},
                {"name": "txt", "type": "TXT", "ttl": 60, "data": "\"hello\""},
                {"name": "big", "type": "TXT", "ttl": 60,
                 "data": " ".join('"%s"' % (chr(97 + i) * 200) for i in range(4))},
                {"name": "alias", "type": "CNAME", "data": "www"},
                {"name": "sub", "type": "NS", "data": "ns.sub"},
                {"name": "ns.sub", "type": "A", "data": "192.0.2.99"},
            ]},
        "pro.example": {
            "account_type": "pro",
            "soa": {"mname": "ns1.example.com", "rname": "h.example.com", "serial": 1, "ttl": 60},
            "ns": ["ns1.example.com"], "hostnames": ["www", "api.v1"]},
        "ecs.example": {
            "account_type": "free",
            "soa": {"mname": "ns1.example.com", "rname": "h.example.com", "serial": 1},
            "ns": ["ns1.example.com"]},
        "local.example": {
            "account_type": "free",
            "soa": {"mname": "ns1.example.com", "rname": "h.example.com", "serial": 1},
            "ns": ["ns1.example.com"]},
        "diverse.example": {
            "account_type": "free",
            "soa": {"mname": "ns1.example.com", "rname": "h.example.com", "serial": 1},
            "ns": ["ns1.example.com"]},
    },
}


def policy_doc(**changes):
    doc = copy.deepcopy(BASE_DOC)
    doc.update(changes)
    return doc


def write_doc(path, doc):
    with open(path, "w") as handle:
        json.dump(doc, handle)
    return str(path)


def free_port():
    """A port free for UDP and TCP on 127.0.0.1 and ::1."""
    for dummy in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(fam, kind) as s:
                        s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def query(name, rdtype="A", port=None, host="127.0.0.1", tcp=False, timeout=2.0, **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    if tcp:
        return dns.query.tcp(q, host, port=port, timeout=timeout)
    return dns.query.udp(q, host, port=port, timeout=timeout, ignore_trailing=False)


def tcp_frame(msg):
    return struct.pack(">H", len(msg)) + msg


def read_frame(sock):
    """One length-prefixed DNS message from ``sock``, or None at EOF."""
    head = b""
    while len(head) < 2:
        chunk = sock.recv(2 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">H", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body


class Server:
    def __init__(self, tmp_path, doc=None, args=(), v6=True, wait=True):
        self.port = free_port()
        self.metrics_port = free_port()
        self.policy = write_doc(tmp_path / "policy.json", doc or policy_doc())
        self.pidfile = str(tmp_path / "agility-dns.pid")
        self.log = open(tmp_path / "server.log", "w+")
        self.logpath = str(tmp_path / "server.log")
        cmd = [AGILITY_DNS, "--policy", self.policy, "--listen", "127.0.0.1:%d" % self.port,
               "--metrics", "127.0.0.1:%d" % self.metrics_port, "--pidfile", self.pidfile]
        if v6:
            cmd += ["--listen", "[::1]:%d" % self.port]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("agility-dns exited: %s" % self.logtext())
            try:
                query("ready.example.com", port=self.port, timeout=0.2)
            except Exception:  # noqa: BLE001
                time.sleep(0.05)
                continue
            # workers answer a moment before the supervisor has their confirmation and logs
            # event=ready (with the worker pids)
            text = self.logtext()
            if "event=ready" in text or '"event": "ready"' in text:
                return
            time.sleep(0.05)
        raise RuntimeError("agility-dns not ready: %s" % self.logtext())

    def logtext(self):
        with open(self.logpath) as handle:
            return handle.read()

    def metrics(self):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        """Value of one sample (0 if absent)."""
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            key, sep, value = line.rpartition(" ")
            if "{" in key:
                mname, lab = key[:-1].split("{", 1)
                lab = ",".join(sorted(lab.split(",")))
            else:
                mname, lab = key, ""
            if mname == name and lab == want:
                return float(value)
        return 0.0

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_until(pred, timeout=5.0):
    """True once ``pred()`` is, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


class Knot:
    """Knot DNS (``knotd``, Debian package knot) on loopback with the given zones, to compare
    answers side by side. ``zones`` maps zone name to zone file text; ``server_conf`` and
    ``template_conf`` are extra lines for those sections; ``sections`` is appended before the
    template (module sections)."""

    def __init__(self, tmp_path, zones, server_conf="", template_conf="", sections=""):
        import shutil
        knotd = shutil.which("knotd") or "/usr/sbin/knotd"
        self.port = free_port()
        zone_conf = ""
        for name, text in zones.items():
            (tmp_path / ("%s.zone" % name)).write_text(text)
            zone_conf += "  - domain: %s\n    file: %s.zone\n" % (name, name)
        (tmp_path / "knot.conf").write_text(
            "server:\n    rundir: %s\n    listen: 127.0.0.1@%d\n%s"
            "log:\n  - target: stderr\n    any: error\ndatabase:\n    storage: %s\n%s"
            "template:\n  - id: default\n    storage: %s\n    semantic-checks: off\n%s"
            "zone:\n%s" % (tmp_path, self.port, server_conf, tmp_path, sections, tmp_path, template_conf, zone_conf))
        self.proc = subprocess.Popen([knotd, "-c", str(tmp_path / "knot.conf")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        probe = next(iter(zones))
        deadline = time.monotonic() + 10
        while True:
            try:
                query(probe, "SOA", port=self.port, timeout=0.3)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("knotd did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
