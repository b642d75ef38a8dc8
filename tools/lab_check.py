"""Check the lab fleet from outside, the way the Internet sees it.

Runs inside the lab's network namespace (``labctl exec``). For each hostname
it asks the given DNS server for A and AAAA, checks every answer lies in an
expected prefix, then connects to the answered address over TCP (HTTP on
port 80: the Host must be echoed; TLS on 443: the SNI must be echoed) and
UDP, and checks the edge that answered is the PoP the namespace routes the
pool to. Prints one JSON document; exit status 1 if anything failed.

    python tools/lab_check.py --dns 198.18.0.11 --zone example.com. --names 20 \
        --expect-prefix 198.18.16.0/20 --expect-prefix 2001:db8:100::/44 --expect-pop pop1
"""

import argparse
import ipaddress
import json
import random
import ssl
import sys

import dns.message
import dns.query
import dns.rdatatype

from lab_client import connect_tcp, http_exchange, http_get, udp_ping  # same directory: the probes


def resolve(server, name, qtype, timeout):
    reply = dns.query.udp(dns.message.make_query(name, qtype), server, timeout=timeout)
    return [r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.from_text(qtype)
            for r in rrset]


def tls_check(address, host, timeout):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the lab's certificate is self-signed
    with connect_tcp(address, 443, timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as sock:
            body = http_exchange(sock, host)
    if body.get("sni") != host:
        raise ValueError("SNI %r echoed as %r" % (host, body.get("sni")))
    return body


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--dns", required=True)
    parser.add_argument("--zone", default="example.com.")
    parser.add_argument("--names", type=int, default=20)
    parser.add_argument("--expect-prefix", action="append", required=True)
    parser.add_argument("--expect-pop", required=True)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    prefixes = [ipaddress.ip_network(p) for p in args.expect_prefix]

    report = {"checks": 0, "failures": [], "addresses": set(), "pops": set()}

    def fail(what):
        if len(report["failures"]) < 30:
            report["failures"].append(what)

    for i in range(args.names):
        name = "svc%03d-%04x.%s" % (i, random.getrandbits(16), args.zone.rstrip("."))
        for qtype in ("A", "AAAA"):
            report["checks"] += 1
            try:
                answers = resolve(args.dns, name + ".", qtype, args.timeout)
            except Exception as exc:  # pylint: disable=broad-except
                fail("dns %s %s: %s" % (qtype, name, exc))
                continue
            if not answers:
                fail("dns %s %s: no answer" % (qtype, name))
                continue
            for address in answers:
                report["addresses"].add(address)
                if not any(ipaddress.ip_address(address) in p for p in prefixes):
                    fail("dns %s %s: %s lies outside %s" % (qtype, name, address, args.expect_prefix))
            address = answers[0]
            for label, check in (("http", lambda a=address, n=name: http_get(a, 80, n, args.timeout)),
                                 ("tls", lambda a=address, n=name: tls_check(a, n, args.timeout)),
                                 ("udp", lambda a=address: udp_ping(a, 53, args.timeout))):
                report["checks"] += 1
                try:
                    body = check()
                except Exception as exc:  # pylint: disable=broad-except
                    fail("%s %s (%s): %s" % (label, address, name, exc))
                    continue
                report["pops"].add(body.get("pop"))
                if body.get("pop") != args.expect_pop:
                    fail("%s %s: reached %s, routed to %s" % (label, address, body.get("pop"), args.expect_pop))
    out = {"checks": report["checks"], "failed": len(report["failures"]) > 0,
           "failures": report["failures"], "distinct_addresses": len(report["addresses"]),
           "pops": sorted(p for p in report["pops"] if p)}
    print(json.dumps(out))
    return 1 if out["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
