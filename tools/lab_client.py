"""A client of the lab fleet, the way the Internet sees it.

Runs inside the lab's network namespace (``labctl exec``). In a loop it asks a
PoP's DNS for a random hostname (A, then AAAA), then connects to the answered
address over TCP (HTTP on port 80 or 443-less ports) and UDP, and checks the
edge service answered with the Host it asked for. Every request is counted
under the stage named in ``--stage-file`` at the moment it was made, so a
migration running beside it can be judged stage by stage.

    python tools/lab_client.py --dns 198.18.0.11 --zone example.com. \
        --stage-file /tmp/stage --out /tmp/client.json [--duration 60] [--rate 20]

Stops on SIGTERM/SIGINT or after --duration seconds, writing --out (also
every second while running). Exit status 0; the JSON says what failed.
"""

import argparse
import json
import os
import random
import signal
import socket
import sys
import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rdatatype


def _stage(path):
    try:
        with open(path) as handle:
            return handle.read().strip() or "unknown"
    except OSError:
        return "unknown"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.stages = {}
        self.order = []

    def record(self, stage, kind, ok, address=None, pop=None, error=None):
        with self.lock:
            if stage not in self.stages:
                self.stages[stage] = {"dns_ok": 0, "dns_failed": 0, "tcp_ok": 0, "tcp_failed": 0,
                                      "udp_ok": 0, "udp_failed": 0, "addresses": {}, "pops": {},
                                      "errors": []}
                self.order.append(stage)
            entry = self.stages[stage]
            entry["%s_%s" % (kind, "ok" if ok else "failed")] += 1
            if address and kind == "dns":
                entry["addresses"][address] = entry["addresses"].get(address, 0) + 1
            if pop:
                entry["pops"][pop] = entry["pops"].get(pop, 0) + 1
            if error and len(entry["errors"]) < 20:
                entry["errors"].append(error)

    def dump(self, path):
        with self.lock:
            doc = {"stages": [dict(self.stages[s], stage=s, distinct=len(self.stages[s]["addresses"]))
                              for s in self.order]}
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(doc, handle, indent=1)
        os.replace(tmp, path)


# Like a resolver, the client caches answers for their TTL: during a migration it keeps
# using addresses of the previous stage until they expire, which is what the safe order
# (narrow DNS, wait out the TTL, then narrow bindings) must survive.
CACHE = {}


def resolve(server, name, qtype, timeout):
    now = time.monotonic()
    cached = CACHE.get((name, qtype))
    if cached and cached[1] > now:
        return cached[0]
    query = dns.message.make_query(name, qtype)
    reply = dns.query.udp(query, server, timeout=timeout)
    if reply.flags & dns.flags.TC:
        reply = dns.query.tcp(query, server, timeout=timeout)
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.from_text(qtype):
            addresses = [r.address for r in rrset]
            CACHE[(name, qtype)] = (addresses, now + rrset.ttl)
            return addresses
    return []


def connect_tcp(address, port, timeout):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def http_exchange(sock, host):
    """One GET / on a connected (plain or TLS) socket; the edge's JSON body."""
    sock.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1].decode())


def http_get(address, port, host, timeout):
    with connect_tcp(address, port, timeout) as sock:
        body = http_exchange(sock, host)
    if body.get("host") != host:
        raise ValueError("edge saw Host %r, not %r" % (body.get("host"), host))
    return body


def udp_ping(address, port, timeout):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((address, port))  # only a reply from the dialled address counts
        token = "%08x" % random.getrandbits(32)
        for dummy in range(3):
            sock.send(("ping %s" % token).encode())
            try:
                body = json.loads(sock.recv(4096).decode())
            except socket.timeout:
                continue
            if body.get("token") == token:
                return body
        raise socket.timeout("no UDP reply from %s:%d" % (address, port))


def one_round(args, stats):
    stage = _stage(args.stage_file)
    name = "h%04d.%s" % (random.randrange(args.names), args.zone.rstrip("."))
    for qtype in ("A", "AAAA"):
        try:
            addresses = resolve(args.dns, name + ".", qtype, args.timeout)
            if not addresses:
                raise ValueError("no %s answer for %s" % (qtype, name))
        except Exception as exc:  # pylint: disable=broad-except
            stats.record(stage, "dns", False, error="%s %s: %s" % (qtype, name, exc))
            continue
        address = addresses[0]
        stats.record(stage, "dns", True, address=address)
        port = random.choice(args.ports)
        try:
            body = http_get(address, port, name, args.timeout)
            stats.record(stage, "tcp", True, pop=body.get("pop"))
        except Exception as exc:  # pylint: disable=broad-except
            stats.record(stage, "tcp", False, error="tcp %s:%d: %s" % (address, port, exc))
        try:
            body = udp_ping(address, port, args.timeout)
            stats.record(stage, "udp", True, pop=body.get("pop"))
        except Exception as exc:  # pylint: disable=broad-except
            stats.record(stage, "udp", False, error="udp %s:%d: %s" % (address, port, exc))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--dns", required=True, help="the PoP DNS server to ask")
    parser.add_argument("--zone", default="example.com.")
    parser.add_argument("--names", type=int, default=200, help="distinct hostnames asked for")
    parser.add_argument("--ports", type=int, nargs="+", default=[80, 8080, 8880])
    parser.add_argument("--stage-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--duration", type=float, default=3600)
    parser.add_argument("--rate", type=float, default=10, help="rounds per second at most")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()

    stats = Stats()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    deadline = time.monotonic() + args.duration
    last_dump = 0.0
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.monotonic()
        one_round(args, stats)
        if started - last_dump >= 1.0:
            stats.dump(args.out)
            last_dump = started
        stop.wait(max(0.0, 1.0 / args.rate - (time.monotonic() - started)))
    stats.dump(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
