# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real local servers for the probe module tests: a dnspython DNS server thread
and the agility-edge process."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ipaddress
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rrset


class DnsServer(object):
    """UDP and TCP DNS on one loopback port; `behaviour(query, transport)` returns a
    dns.message.Message, raw bytes, or None (stay silent)."""

    def __init__(self, behaviour, host="127.0.0.1"):
        self.behaviour = behaviour
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        for attempt in range(50):
            # a free UDP port may be busy for TCP (an ephemeral client port): try another
            self.udp = socket.socket(fam, socket.SOCK_DGRAM)
            self.udp.bind((host, 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(fam, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind((host, self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
                if attempt == 49:
                    raise
        self.tcp.listen(16)
        self.host = host
        self.queries = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def _answer(self, wire, transport):
        q = dns.message.from_wire(wire)
        self.queries.append((q.question[0].name.to_text(), transport))
        out = self.behaviour(q, transport)
        if out is None or isinstance(out, (bytes, list)):
            return out
        return out.to_wire()

    def _serve_udp(self):
        self.udp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            out = self._answer(data, "udp")
            if out:
                for part in (out if isinstance(out, list) else [out]):
                    self.udp.sendto(part, peer)

    def _serve_tcp(self):
        self.tcp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    n = struct.unpack("!H", conn.recv(2))[0]
                    data = b""
                    while len(data) < n:
                        data += conn.recv(n - len(data))
                    out = self._answer(data, "tcp")
                    if out:
                        conn.sendall(struct.pack("!H", len(out)) + out)
                except (OSError, struct.error):
                    pass

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


def pool_answer(prefix, ttl=30, rng=None, cname=False):
    """Policy-first style: any name gets one random address of `prefix`."""
    net = ipaddress.ip_network(prefix)
    rng = rng or random.Random(7)
    rtype = "A" if net.version == 4 else "AAAA"

    def behaviour(q, transport):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        qname = q.question[0].name
        owner = qname
        if cname:
            owner = dns.name.from_text("target.pool.example.")
            r.answer.append(dns.rrset.from_text(qname, ttl, "IN", "CNAME", owner.to_text()))
        if q.question[0].rdtype == dns.rdatatype.from_text(rtype):
            addr = net.network_address + rng.randrange(net.num_addresses)
            r.answer.append(dns.rrset.from_text(owner, ttl, "IN", rtype, str(addr)))
        return r
    return behaviour


def dual_pool(v4_prefix, v6_prefix, ttl=30):
    """A from one pool prefix, AAAA from the other (a dual-stack pool)."""
    answer_a, answer_aaaa = pool_answer(v4_prefix, ttl), pool_answer(v6_prefix, ttl)

    def behaviour(q, transport):
        if q.question[0].rdtype == dns.rdatatype.AAAA:
            return answer_aaaa(q, transport)
        return answer_a(q, transport)
    return behaviour


PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGTERM when the process that started it exits.

    ansible-test runs each test in a forked child that leaves with os._exit, so a fixture's
    teardown may never run there; the kernel then stops the server instead of leaking it.
    """
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Edge(object):
    """The real agility-edge process on loopback."""

    def __init__(self, pop, listens, extra=()):
        cmd = [sys.executable, "-m", "agility_runtime.edge.cli", "--pop", pop]
        for spec in listens:
            cmd += ["--listen", spec]
        cmd += list(extra)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 15
        while sum("INFO listening" in l for l in list(self.lines)) < len(listens):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("agility-edge failed: %s" % "\n".join(self.lines))
            time.sleep(0.02)

    def _read(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.reader.join(5)


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        u = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
