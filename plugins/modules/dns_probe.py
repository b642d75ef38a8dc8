#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Agility Addressing Maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dns_probe
short_description: Query a DNS server repeatedly and check the addresses it answers
version_added: 0.1.0
description:
  - Sends DNS queries straight to one server (no resolver, no recursion desired) and reports
    the set of addresses it answered, the TTLs and the response codes.
  - Meant as a health gate for address-agile pools, where an authoritative server answers a
    random address of a pool prefix per query. The module fails if any answer lies outside
    O(expect_prefix) or if fewer than O(min_answers) queries got an address.
  - Only reads; it never reports a change and runs the same in check mode.
  - Needs only the Python standard library on the managed host; DNS messages are built and
    parsed by the module itself.
author: Agility Addressing Maintainers (@agility-addressing)
extends_documentation_fragment:
  - agility.addressing.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  server:
    description: Address or host name of the DNS server to query.
    type: str
    required: true
  port:
    description: Port of the DNS server.
    type: int
    default: 53
  names:
    description:
      - Names to query. Each is queried O(repeat) times.
      - Exactly one of O(names) and O(zone) is required.
    type: list
    elements: str
  zone:
    description:
      - Query O(count) random labels under this zone (for example V(abc123.example.com))
        instead of fixed names, as a wildcard or policy-first server answers any name.
    type: str
  count:
    description: Number of random labels to make under O(zone).
    type: int
    default: 10
  repeat:
    description: How many times each name is queried.
    type: int
    default: 1
  qtype:
    description:
      - Record types to ask for. Each name is asked once per type, in one module run (a health
        gate checks A and AAAA together). A plain string is one type.
    type: list
    elements: str
    choices: [A, AAAA]
    default: [A]
  protocol:
    description:
      - Transport for the queries. Over V(udp) a truncated answer is asked again over TCP.
    type: str
    choices: [udp, tcp]
    default: udp
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 2.0
  expect_prefix:
    description:
      - Prefixes (for example V(198.18.0.0/20)) every answered address must lie in.
        A plain string is one prefix. No check when not given.
    type: list
    elements: str
  min_answers:
    description:
      - Fail when fewer queries than this got at least one address of the type asked with rcode NOERROR.
      - Defaults to the number of queries sent, so every query must be answered.
    type: int
notes:
  - Queries are sent one after another; total run time is at most queries times O(timeout).
seealso:
  - module: agility.addressing.reach_probe
"""

EXAMPLES = r"""
- name: Every answer for the pool lies in the /24 stage
  agility.addressing.dns_probe:
    server: 198.51.100.53
    zone: pool.example.com
    count: 50
    expect_prefix: 198.18.0.0/24
  register: dns_gate

- name: Ask one name 20 times over TCP for IPv6 and allow two failures
  agility.addressing.dns_probe:
    server: "2001:db8::53"
    names: [www.example.com]
    repeat: 20
    qtype: AAAA
    protocol: tcp
    expect_prefix: [2001:db8:100::/48]
    min_answers: 18

- name: A and AAAA of 30 random names under the zone, all inside the pool's used prefixes
  agility.addressing.dns_probe:
    server: 127.0.0.1
    zone: example.com
    count: 30
    qtype: [A, AAAA]
    expect_prefix: [198.18.16.0/24, "2001:db8:100::/64"]

- name: Show how many distinct addresses were handed out
  ansible.builtin.debug:
    msg: "{{ dns_gate.distinct }} distinct addresses, TTL {{ dns_gate.ttl_min }}..{{ dns_gate.ttl_max }}"
"""

RETURN = r"""
queries:
  description: Number of queries sent.
  returned: always
  type: int
  sample: 50
succeeded:
  description: Queries answered with rcode NOERROR and at least one address of the asked type.
  returned: always
  type: int
  sample: 50
addresses:
  description: Distinct addresses answered, sorted.
  returned: always
  type: list
  elements: str
  sample: [198.18.0.7, 198.18.0.201]
distinct:
  description: Number of distinct addresses answered.
  returned: always
  type: int
  sample: 2
outside:
  description: Answered addresses outside O(expect_prefix) (empty when not given).
  returned: always
  type: list
  elements: str
  sample: []
rcodes:
  description: Count of answers per response code; V(TIMEOUT) and V(ERROR) count queries without a usable answer.
  returned: always
  type: dict
  sample: {NOERROR: 50}
ttl_min:
  description: Smallest TTL of the answered address records, null without any.
  returned: always
  type: int
  sample: 30
ttl_max:
  description: Largest TTL of the answered address records, null without any.
  returned: always
  type: int
  sample: 30
answers:
  description: One entry per query.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name queried.
      type: str
    qtype:
      description: Record type asked for.
      type: str
    rcode:
      description: Response code name, V(TIMEOUT) or V(ERROR).
      type: str
    addresses:
      description: Addresses of the asked type in the answer section.
      type: list
      elements: str
    ttls:
      description: TTL of each address, in the same order.
      type: list
      elements: int
    protocol:
      description: Transport that carried the answer (V(tcp) after a truncated UDP answer).
      type: str
    elapsed_ms:
      description: Milliseconds from sending to the answer.
      type: float
    error:
      description: Why there is no answer, null otherwise.
      type: str
  sample:
    - {name: a1b2.pool.example.com., qtype: A, rcode: NOERROR, addresses: [198.18.0.7], ttls: [30],
       protocol: udp, elapsed_ms: 0.4, error: null}
"""

import ipaddress
import itertools
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.agility.addressing.plugins.module_utils._wire import (
    RCODES, WireError, dns_exchange, in_networks, random_label, to_networks,
)


def _address_order(text):
    """IPv4 before IPv6, then numerically (ipaddress refuses to compare across versions)."""
    addr = ipaddress.ip_address(u"%s" % text)
    return addr.version, addr


def run_queries(p):
    if p["names"]:
        names = list(p["names"])
    else:
        zone = p["zone"].strip(".")
        names = ["%s.%s" % (random_label(), zone) for dummy in range(p["count"])]
    answers = []
    for name in names:
        for qtype, dummy in itertools.product(p["qtype"], range(p["repeat"])):
            entry = {"name": name.rstrip(".") + ".", "qtype": qtype, "rcode": None, "addresses": [], "ttls": [],
                     "protocol": p["protocol"], "elapsed_ms": None, "error": None}
            start = time.monotonic()
            try:
                resp, used = dns_exchange(p["server"], p["port"], name, qtype,
                                          p["protocol"], p["timeout"])
            except socket.timeout:
                entry["rcode"] = "TIMEOUT"
                entry["error"] = "no answer within %ss" % p["timeout"]
            except (WireError, OSError, ValueError) as exc:
                entry["rcode"] = "ERROR"
                entry["error"] = "%s: %s" % (type(exc).__name__, exc)
            else:
                entry["protocol"] = used
                entry["rcode"] = RCODES.get(resp["rcode"], str(resp["rcode"]))
                for rec in resp["answers"]:
                    if rec["type"] == qtype and "address" in rec:
                        entry["addresses"].append(rec["address"])
                        entry["ttls"].append(rec["ttl"])
            entry["elapsed_ms"] = round((time.monotonic() - start) * 1000.0, 3)
            answers.append(entry)
    return answers


def main():
    module = AnsibleModule(
        argument_spec=dict(
            server=dict(type="str", required=True),
            port=dict(type="int", default=53),
            names=dict(type="list", elements="str"),
            zone=dict(type="str"),
            count=dict(type="int", default=10),
            repeat=dict(type="int", default=1),
            qtype=dict(type="list", elements="str", choices=["A", "AAAA"], default=["A"]),
            protocol=dict(type="str", choices=["udp", "tcp"], default="udp"),
            timeout=dict(type="float", default=2.0),
            expect_prefix=dict(type="list", elements="str"),
            min_answers=dict(type="int"),
        ),
        required_one_of=[("names", "zone")],
        mutually_exclusive=[("names", "zone")],
        supports_check_mode=True,
    )
    p = module.params
    if not 0 < p["port"] < 65536:
        module.fail_json(msg="port must be 1..65535, got %d" % p["port"])
    if p["count"] < 1 or p["repeat"] < 1:
        module.fail_json(msg="count and repeat must be at least 1")
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be positive")
    if p["names"] is not None and not [n for n in p["names"] if n.strip(".")]:
        module.fail_json(msg="names must hold at least one non-empty name")
    try:
        networks = to_networks(p["expect_prefix"] or [])
    except ValueError as exc:
        module.fail_json(msg="expect_prefix: %s" % exc)

    answers = run_queries(p)
    queries = len(answers)
    succeeded = sum(1 for a in answers if a["rcode"] == "NOERROR" and a["addresses"])
    addresses = sorted(set(addr for a in answers for addr in a["addresses"]), key=_address_order)
    outside = [a for a in addresses if networks and not in_networks(a, networks)]
    rcodes = {}
    for a in answers:
        rcodes[a["rcode"]] = rcodes.get(a["rcode"], 0) + 1
    ttls = [t for a in answers for t in a["ttls"]]
    min_answers = queries if p["min_answers"] is None else p["min_answers"]
    result = dict(
        changed=False, queries=queries, succeeded=succeeded, addresses=addresses,
        distinct=len(addresses), outside=outside, rcodes=rcodes,
        ttl_min=min(ttls) if ttls else None, ttl_max=max(ttls) if ttls else None,
        answers=answers,
    )
    problems = []
    if outside:
        problems.append("%d answered address(es) outside %s: %s"
                        % (len(outside), ", ".join(p["expect_prefix"]), ", ".join(outside[:10])))
    if succeeded < min_answers:
        problems.append("%d of %d queries answered, %d required (rcodes %s)"
                        % (succeeded, queries, min_answers,
                           ", ".join("%s=%d" % kv for kv in sorted(rcodes.items()))))
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    module.exit_json(msg="%d of %d queries answered, %d distinct address(es)"
                     % (succeeded, queries, len(addresses)), **result)


if __name__ == "__main__":
    main()
