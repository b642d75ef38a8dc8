#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bounded, simulated attacker for the lab's DoS bisection (docs/beyond-the-paper.md).

Runs inside the lab's network namespace (``labctl exec``). It sends UDP datagrams
at a fixed rate, either to whatever address a PoP's DNS gives for one hostname
(an attack on a service: it re-resolves when the answer's TTL runs out, as a
botnet behind resolvers does), or to one fixed address (an attack on L3/L4):

    python tools/lab_attacker.py --dns 198.18.0.11 --name svc37.example.edu --rate 50 --duration 300
    python tools/lab_attacker.py --dns 198.18.0.11 --name svc37.example.edu --qtype AAAA --duration 300
    python tools/lab_attacker.py --address 198.18.48.100 --rate 50 --duration 300

Bounded by design: at most 500 datagrams per second and 900 seconds, and only to
the lab's documentation and benchmark prefixes. Prints a JSON summary (datagrams
per destination address) when it stops (SIGTERM, SIGINT or --duration).
"""

import argparse
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

MAX_RATE = 500
MAX_DURATION = 900
LAB_PREFIXES = [ipaddress.ip_network(p) for p in
                ("198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


def lab_address(text):
    address = ipaddress.ip_address(text)
    if not any(address in net for net in LAB_PREFIXES):
        raise ValueError("%s is not a lab address (allowed: %s)" % (address, ", ".join(map(str, LAB_PREFIXES))))
    return str(address)


def in_lab_netns():
    """True when this process runs in the lab's network namespace (LAB_NS, as labctl)."""
    name = os.environ.get("LAB_NS", "agility-lab")
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat(os.path.join("/run/netns", name)).st_ino
    except OSError:
        return False


class Target:
    """The address to hit now: fixed, or resolved and cached for the answer's TTL."""

    def __init__(self, args):
        self.args = args
        self.address = lab_address(args.address) if args.address else None
        self.expires = 0.0

    def current(self):
        if self.args.address:
            return self.address
        now = time.monotonic()
        if now >= self.expires:
            qtype = dns.rdatatype.from_text(self.args.qtype)
            reply = dns.query.udp(dns.message.make_query(self.args.name, qtype), self.args.dns, timeout=2.0)
            for rrset in reply.answer:
                if rrset.rdtype == qtype:
                    self.address = lab_address(rrset[0].address)
                    self.expires = now + max(1, rrset.ttl)
                    break
            else:
                raise ValueError("no %s answer for %s from %s" % (self.args.qtype, self.args.name, self.args.dns))
        return self.address


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--name", help="hostname to resolve and attack (needs --dns)")
    what.add_argument("--address", help="address to attack directly (L3/L4)")
    parser.add_argument("--dns", help="the PoP DNS server to ask for --name")
    parser.add_argument("--qtype", choices=["A", "AAAA"], default="A",
                        help="attack over IPv4 (A) or IPv6 (AAAA) addresses of --name")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rate", type=float, default=50, help="datagrams per second (at most %d)" % MAX_RATE)
    parser.add_argument("--duration", type=float, default=300, help="seconds (at most %d)" % MAX_DURATION)
    args = parser.parse_args()
    if args.name and not args.dns:
        parser.error("--name needs --dns")
    if not 0 < args.rate <= MAX_RATE or not 0 < args.duration <= MAX_DURATION:
        parser.error("bounded load only: 0 < --rate <= %d, 0 < --duration <= %d" % (MAX_RATE, MAX_DURATION))
    if args.address:
        try:
            lab_address(args.address)
        except ValueError as exc:
            parser.error(str(exc))
    if not in_lab_netns():
        parser.error("run inside the lab's network namespace %r (labctl exec ...), never on the host's network"
                     % os.environ.get("LAB_NS", "agility-lab"))
    try:
        target = Target(args)
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    sent, errors = {}, []
    deadline = time.monotonic() + args.duration
    interval = 1.0 / args.rate
    socks = {4: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 6: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)}
    next_send = time.monotonic()
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            address = target.current()
            socks[ipaddress.ip_address(address).version].sendto(b"attack", (address, args.port))
            sent[address] = sent.get(address, 0) + 1
        except (OSError, ValueError, dns.exception.DNSException) as exc:
            if len(errors) < 20:
                errors.append(str(exc))
        next_send += interval
        stop.wait(max(0.0, next_send - time.monotonic()))
    print(json.dumps({"sent": sent, "total": sum(sent.values()), "errors": errors}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
